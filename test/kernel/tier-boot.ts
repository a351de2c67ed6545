// One guest boot of the kernel tier as its vitest tests see it: started by whichever test needs it
// first, then each test waits for one case with that case's own budget (budget.ts), counted from
// the moment the guest says the case started. A case over its budget kills the guest; the error
// names the case and the console log file (kept), and the boot's later cases fail as not run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import {
  BOOT_LIMIT_MS,
  budgetMs,
  MARGIN,
  MAX_SCALE,
  NOMINAL_BOOT_MS,
  nominalMs,
  POWEROFF_LIMIT_MS,
  speedScale,
} from './budget.ts';
import {
  type BootOptions,
  type GuestEvent,
  type GuestRun,
  type GuestSession,
  startGuest,
} from './harness.ts';

/** The harness's own bound on a whole boot; the per-case budgets are the real ones. */
const SESSION_LIMIT_MS = 3 * 60 * 60_000;

/** How long after its last line a guest may take to print its exit line before `stop()` kills it. */
const EXIT_GRACE_MS = 30_000;

const sec = (ms: number) => (ms / 1000).toFixed(1);

/** Resolves with `check()`'s first value; rejects when it throws or when `deadline()` passes. */
function waitFor<T>(
  s: GuestSession,
  check: () => T | undefined,
  deadline: () => number,
  onLate: () => Promise<Error>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = (f: () => void) => {
      s.off('change', poll);
      clearInterval(timer);
      f();
    };
    const poll = () => {
      try {
        const v = check();
        if (v !== undefined) return done(() => resolve(v));
      } catch (e) {
        return done(() => reject(e));
      }
      if (Date.now() > deadline()) done(() => void onLate().then(reject));
    };
    s.on('change', poll);
    const timer = setInterval(poll, 1000);
    poll();
  });
}

export class TierBoot {
  /** Names this boot in messages and its console log file. */
  readonly name: string;
  readonly consoleLog: string;
  /** One line per case: time, budget, result (printed by `summary()`). */
  readonly lines: string[] = [];
  private readonly options: () => Promise<Omit<BootOptions, 'timeoutMs' | 'consoleLog'>>;
  private starting: Promise<GuestSession> | undefined;
  /** The guest's result, once `finished()` saw it. */
  private done: GuestRun | undefined;

  constructor(
    name: string,
    logDir: string,
    options: () => Promise<Omit<BootOptions, 'timeoutMs' | 'consoleLog'>>,
  ) {
    this.name = name;
    this.options = options;
    this.consoleLog = join(logDir, `${name}.console.log`);
  }

  /** The running (or finished) guest; boots it on first use. */
  session(): Promise<GuestSession> {
    this.starting ??= this.options().then((o) =>
      startGuest({ ...o, timeoutMs: SESSION_LIMIT_MS, consoleLog: this.consoleLog }),
    );
    return this.starting;
  }

  /** Waits until the guest reached /init (BOOT_LIMIT_MS per attempt); resolves to its speed scale. */
  async booted(): Promise<number> {
    const s = await this.session();
    const bootMs = await waitFor(
      s,
      () => {
        if (s.bootMs !== undefined) return s.bootMs;
        if (s.gone) throw new Error(`the ${this.name} guest did not boot: ${this.whyGone(s)}`);
        return undefined;
      },
      () => s.attemptStartedAt + BOOT_LIMIT_MS,
      () => this.killFor(s, `it did not reach /init within ${sec(BOOT_LIMIT_MS)} s`),
    );
    return speedScale(bootMs);
  }

  /** Waits for the case's result within its budget and asserts it passed; resolves to its data. */
  async expectCase(name: string): Promise<unknown> {
    const s = await this.session();
    const scale = await this.booted();
    const budget = budgetMs(name, scale);
    const waitingSince = Date.now();
    let c: GuestEvent;
    try {
      c = await waitFor(
        s,
        () => {
          const c = this.result(s, name);
          if (c) return c;
          if (s.gone) throw new Error(`"${name}" did not run: ${this.whyGone(s)}`);
          return undefined;
        },
        // until the case starts, the time since the last thing the guest said counts against it
        () => (s.caseStartedAt.get(name) ?? Math.max(waitingSince, s.lastEventAt)) + budget,
        () =>
          this.killFor(
            s,
            `case "${name}" hung: ${s.caseStartedAt.has(name) ? 'no result' : 'it did not even start'} within its budget of ${sec(budget)} s ` +
              `(${MARGIN} × nominal ${sec(nominalMs(name))} s × speed ${scale.toFixed(2)}${scale >= MAX_SCALE ? ' (capped)' : ''} + floor)`,
          ),
      );
    } catch (e) {
      const hung = s.killedBecause?.startsWith(`case "${name}" hung`);
      this.note(`${hung ? 'HUNG' : 'none'} ${hung ? `> ${sec(budget)} s` : '(not run)'}  ${name}`);
      throw e;
    }
    // host wall from the guest's start line to its result line: what the budget bounds
    const wall = (s.caseEndedAt.get(name) ?? Date.now()) - (s.caseStartedAt.get(name) ?? waitingSince);
    this.note(
      `${c.ok ? 'ok  ' : 'FAIL'} ${sec(wall).padStart(6)} s of ${sec(budget).padStart(6)} s  ${name}`,
    );
    expect(c.error ?? '', `${c.error}\nconsole log: ${this.consoleLog}`).toBe('');
    expect(c.ok).toBe(true);
    return c.data;
  }

  /** The result of a case this boot already reported (for a test that reads an earlier case). */
  async resultOf(name: string): Promise<GuestEvent | undefined> {
    return this.result(await this.session(), name);
  }

  /**
   * Waits until the guest is gone (it powers off after its last case; a guest that does not
   * within POWEROFF_LIMIT_MS of its last line is killed). Undefined when it never started.
   */
  async finished(): Promise<GuestRun | undefined> {
    if (!this.starting) return undefined;
    const s = await this.starting.catch(() => undefined);
    if (!s) return undefined;
    await waitFor(
      s,
      () => (s.gone ? true : undefined),
      () => s.lastEventAt + POWEROFF_LIMIT_MS,
      async () => {
        s.kill(`it did not power off within ${sec(POWEROFF_LIMIT_MS)} s of its last line`);
        return new Error('unreachable: the kill ends the wait');
      },
    ).catch(() => undefined);
    await s.finished.catch(() => undefined);
    this.done = s.run;
    return s.run;
  }

  /**
   * The tests of this boot are over: a guest past its last case (it printed its exit line within
   * EXIT_GRACE_MS of its last line) may power off; one still running cases (a test filter, a
   * failure) is killed.
   */
  async stop(): Promise<void> {
    const s = this.starting ? await this.starting.catch(() => undefined) : undefined;
    if (s && !s.gone) {
      const exiting = await waitFor(
        s,
        () => (s.gone || s.events.some((e) => e.kind === 'exit') ? true : undefined),
        () => s.lastEventAt + EXIT_GRACE_MS,
        async () => new Error('no exit line'),
      ).catch(() => false);
      if (!exiting) s.kill('the tests of this boot were over before its last case');
    }
    await this.finished();
  }

  /** What this boot did: accel, boot time and speed, wall time, why it was killed, each case. */
  summary(): string {
    const r = this.done;
    const head = !r
      ? 'did not boot'
      : `${r.accel}, boot ${r.bootMs === undefined ? '?' : `${sec(r.bootMs)} s (nominal ${sec(NOMINAL_BOOT_MS)} s: speed ${speedScale(r.bootMs).toFixed(2)})`}, ` +
        `wall ${r.wallSec.toFixed(1)} s, exit ${r.exitCode ?? 'none'}${r.killedBecause ? `, killed: ${r.killedBecause}` : ''}`;
    return `[kernel] ${this.name}: ${head}; console log ${this.consoleLog}\n  ${this.lines.join('\n  ')}`;
  }

  private note(line: string): void {
    this.lines.push(line);
    console.log(`[kernel] ${this.name}: ${line}`);
  }

  private result(s: GuestSession, name: string): GuestEvent | undefined {
    return s.events.find((e) => e.kind === 'case' && e.name === name);
  }

  private whyGone(s: GuestSession): string {
    const log = `console log: ${this.consoleLog}`;
    if (s.error) return `the harness failed: ${s.error}`;
    if (s.killedBecause) return `the guest was killed because ${s.killedBecause}; ${log}`;
    const last = [...s.caseStartedAt.keys()].at(-1);
    const failed = s.events.find((e) => e.kind === 'case' && !e.ok)?.name;
    return (
      `the guest ${s.run?.timedOut ? 'ran out of time' : `exited (code ${s.run?.exitCode ?? 'none'})`}` +
      (failed ? ` after "${failed}" failed (a failed scenario stops the ones after it)` : '') +
      (last ? `; the last case it started was "${last}"` : '; it started no case') +
      `; ${log}`
    );
  }

  /** Kills the guest for `reason`, waits for its console log to be written, and says where. */
  private async killFor(s: GuestSession, reason: string): Promise<Error> {
    s.kill(reason);
    await s.finished.catch(() => undefined);
    let tail = '';
    try {
      tail = readFileSync(this.consoleLog, 'utf8').slice(-2500);
    } catch {
      tail = '(no console log)';
    }
    return new Error(
      `kernel tier, ${this.name} boot: ${reason}; the guest was killed (boot ${s.bootMs === undefined ? '?' : sec(s.bootMs)} s).\n` +
        `console log: ${this.consoleLog}\nconsole tail:\n${tail}`,
    );
  }
}
