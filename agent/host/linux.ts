// LinuxHost's entry: the class lives in linux/ (one module per section of the Host interface,
// parsers in linux/parse/); callers keep importing it from here.
export { LinuxHost, type LinuxHostOptions } from './linux/host.ts';
