/**
 * Lets the MIME renderers (which get no application object) run the panel's commands.
 * The main plugin registers its command registry here when it activates; both live in
 * the same bundle, so they share this module.
 */
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

/** What the renderers may ask for. */
export type BridgeCommand = 'logs' | 'open';

type Runner = (command: BridgeCommand, args: ReadonlyPartialJSONObject) => Promise<unknown>;

let runner: Runner | null = null;

/** Called by the main plugin on activation. */
export function setCommandRunner(run: Runner): void {
  runner = run;
}

/** Run a panel command; without the Deployments plugin, explain it in the console. */
export function runCommand(command: BridgeCommand, args: ReadonlyPartialJSONObject): void {
  if (!runner) {
    console.warn(`nbdeploy: the Deployments plugin is not active; cannot run "${command}"`);
    return;
  }
  void runner(command, args);
}
