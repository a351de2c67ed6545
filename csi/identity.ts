// The CSI Identity service.
import pkg from '../package.json' with { type: 'json' };

export const DRIVER_NAME = 'meshstor.io';

export interface IdentityOptions {
  /** Whether this process serves the Controller service (the controller) or only Node (the agent). */
  controller: boolean;
  ready: () => boolean;
}

export class IdentityService {
  private readonly opts: IdentityOptions;
  constructor(opts: IdentityOptions) {
    this.opts = opts;
  }

  async getPluginInfo() {
    return { name: DRIVER_NAME, vendor_version: pkg.version, manifest: {} };
  }

  async getPluginCapabilities() {
    const caps: unknown[] = [{ volume_expansion: { type: 'ONLINE' } }];
    if (this.opts.controller) {
      caps.unshift(
        { service: { type: 'CONTROLLER_SERVICE' } },
        { service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } },
      );
    }
    return { capabilities: caps };
  }

  async probe() {
    return { ready: { value: this.opts.ready() } };
  }
}
