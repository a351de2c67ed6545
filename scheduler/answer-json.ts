// The verbs' answers written as JSON text straight from what the state computed, without first
// building the wire objects (500 `{Host, Score}` objects per prioritize) only to stringify them.
// Node names go through JSON.stringify (they come from the request and may hold any character).
import type { NodeScore } from '../placement/index.ts';

/** ExtenderFilterResult for nodeCacheCapable: names that passed, unresolvable failures. */
export function filterAnswerJson(passed: readonly string[], unresolvable: Record<string, string>): string {
  return `{"NodeNames":${JSON.stringify(passed)},"FailedNodes":{},"FailedAndUnresolvableNodes":${JSON.stringify(unresolvable)},"Error":""}`;
}

/** HostPriorityList: `[{"Host": name, "Score": 0..10}]` in the candidates' order. */
export function prioritizeAnswerJson(scores: readonly NodeScore[]): string {
  let out = '[';
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as NodeScore;
    out += `${i === 0 ? '' : ','}{"Host":${JSON.stringify(s.node)},"Score":${s.score}}`;
  }
  return `${out}]`;
}
