/**
 * The "Deployments" side panel: models and services of the workspace at a glance.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  deployLine,
  fetchModels,
  fetchServices,
  fetchTargets,
  IModelSummary,
  IServiceSummary,
  ITargetsResponse,
  ITargetSummary
} from './api';

/** What a click on a panel button asks the extension to do (the commands run it). */
export type PanelAction =
  | { kind: 'swagger'; service: IServiceSummary }
  | { kind: 'logs'; service: IServiceSummary }
  | { kind: 'delete'; service: IServiceSummary }
  | { kind: 'copy'; model: IModelSummary; line: string };

export interface IDeploymentsPanelOptions {
  /** Called when the user presses an action button. */
  onAction: (action: PanelAction) => void;
  /** The label of the notebook whose kernel's workspace is shown (or null). */
  context?: () => string | null;
  /** Milliseconds between refreshes while the panel is visible. */
  pollInterval?: number;
}

/** The panel's DOM id; its side-bar tab is li[data-id="nbdeploy-deployments"]. */
export const PANEL_ID = 'nbdeploy-deployments';

/** What the target selector offers when the server cannot list its targets. */
const LOCAL_ONLY: ITargetsResponse = {
  default: 'local',
  targets: [{ name: 'local', usable: true, description: 'a process on this machine', reason: null }]
};

/** The selector's tooltip: the chosen target, then why the others cannot be chosen. */
function targetsTitle(chosen: ITargetSummary | undefined, targets: ITargetSummary[]): string {
  const lines = chosen ? [`Deploy to ${chosen.name}: ${chosen.description}`] : [];
  for (const target of targets) {
    if (!target.usable) {
      lines.push(`${target.name} is unavailable: ${target.reason ?? 'no reason given'}`);
    }
  }
  return lines.join('\n');
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(label: string, action: string, title: string): HTMLButtonElement {
  const node = el('button', 'jp-nbdeploy-action', label);
  node.type = 'button';
  node.dataset.action = action;
  node.title = title;
  return node;
}

/** The side panel. It polls the server only while it is visible. */
export class DeploymentsPanel extends Widget {
  constructor(options: IDeploymentsPanelOptions) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-nbdeploy-panel');
    this._onAction = options.onAction;
    this._context = options.context ?? (() => null);
    this._interval = options.pollInterval ?? 3000;

    const header = el('div', 'jp-nbdeploy-header');
    header.appendChild(el('h2', 'jp-nbdeploy-title', 'Deployments'));
    const refresh = button('Refresh', 'refresh', 'Read the workspace again');
    refresh.addEventListener('click', () => void this.refresh());
    header.appendChild(refresh);
    this._workspace = el('div', 'jp-nbdeploy-workspace');
    this._origin = el('div', 'jp-nbdeploy-workspace-origin');
    this._error = el('div', 'jp-nbdeploy-error');
    this._error.hidden = true;

    this._servicesTitle = el('h3', 'jp-nbdeploy-section', 'Services');
    this._services = el('ul', 'jp-nbdeploy-services');
    this._modelsTitle = el('h3', 'jp-nbdeploy-section', 'Models');
    this._models = el('ul', 'jp-nbdeploy-models');

    for (const child of [
      header,
      this._workspace,
      this._origin,
      this._error,
      this._servicesTitle,
      this._services,
      this._modelsTitle,
      this._models
    ]) {
      this.node.appendChild(child);
    }
  }

  /**
   * Read models and services now and redraw what changed. `readTargets`: also ask
   * again which targets can be used (the periodic refresh does not).
   */
  async refresh(readTargets = true): Promise<void> {
    if (this._inFlight) {
      return this._inFlight;
    }
    this._inFlight = this._load(readTargets).finally(() => {
      this._inFlight = null;
    });
    return this._inFlight;
  }

  private async _readTargets(): Promise<ITargetsResponse> {
    try {
      return await fetchTargets();
    } catch (error) {
      console.warn('nbdeploy: cannot list the deployment targets; offering local only', error);
      return this._targets ?? LOCAL_ONLY;
    }
  }

  private async _load(readTargets: boolean): Promise<void> {
    try {
      const [services, models, targets] = await Promise.all([
        fetchServices(),
        fetchModels(),
        readTargets || this._targets === null ? this._readTargets() : this._targets
      ]);
      this._targets = targets;
      this._error.hidden = true;
      this._error.textContent = '';
      const notebook = this._context();
      const origin =
        services.source === 'kernel' && notebook
          ? `the workspace of ${notebook}`
          : notebook
            ? `the server's workspace (${notebook} has not loaded nbdeploy)`
            : "the server's workspace";
      this._workspace.textContent = `Workspace: ${services.workspace}`;
      this._workspace.title = `${services.workspace}: ${origin}`;
      this._workspace.dataset.source = services.source;
      this._origin.textContent = origin;
      this._renderServices(services.services);
      this._renderModels(models.models, targets);
    } catch (error) {
      this._error.hidden = false;
      this._error.textContent = `Cannot read the workspace: ${
        error instanceof Error ? error.message : String(error)
      }`;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
    this._startPolling();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopPolling();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopPolling();
    super.onBeforeDetach(msg);
  }

  dispose(): void {
    this._stopPolling();
    super.dispose();
  }

  private _startPolling(): void {
    this._stopPolling();
    this._timer = window.setInterval(() => {
      // A hidden browser tab does not need fresh data either.
      if (this.isVisible && !document.hidden) {
        void this.refresh(false);
      }
    }, this._interval);
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  private _renderServices(services: IServiceSummary[]): void {
    // `updated` moves on every live probe; only a visible change redraws the list.
    const key =
      this._workspace.textContent +
      JSON.stringify(services, (field: string, value: unknown) =>
        field === 'updated' ? undefined : value
      );
    if (key === this._servicesKey) {
      return; // unchanged: keep the DOM (and any button under the pointer) as it is
    }
    this._servicesKey = key;
    this._servicesTitle.textContent = `Services (${services.length})`;
    this._services.replaceChildren();
    if (services.length === 0) {
      this._services.appendChild(
        el('li', 'jp-nbdeploy-empty', 'No services. Deploy a model from a notebook: %deploy name:version')
      );
    }
    for (const service of services) {
      this._services.appendChild(this._serviceItem(service));
    }
  }

  private _serviceItem(service: IServiceSummary): HTMLLIElement {
    const item = el('li', 'jp-nbdeploy-item jp-nbdeploy-service');
    item.dataset.name = service.name;
    item.dataset.state = service.state;

    const head = el('div', 'jp-nbdeploy-item-head');
    head.appendChild(el('span', 'jp-nbdeploy-name', service.name));
    const badge = el(
      'span',
      `jp-nbdeploy-badge jp-nbdeploy-state-${service.state.toLowerCase()}`,
      service.state
    );
    if (service.probe_error) {
      badge.title = `last recorded state; the live state is unknown: ${service.probe_error}`;
      badge.classList.add('jp-nbdeploy-stale');
    }
    head.appendChild(badge);
    item.appendChild(head);

    const details = el('dl', 'jp-nbdeploy-details');
    const add = (label: string, value: string, cls: string): void => {
      details.appendChild(el('dt', '', label));
      const dd = el('dd', cls, value);
      dd.title = value;
      details.appendChild(dd);
    };
    add('target', service.target, 'jp-nbdeploy-target');
    add('scoring URI', service.scoring_uri ?? '—', 'jp-nbdeploy-uri');
    add('models', service.models.join(', ') || '—', 'jp-nbdeploy-service-models');
    item.appendChild(details);
    if (service.error) {
      item.appendChild(el('div', 'jp-nbdeploy-service-error', service.error));
    }

    const actions = el('div', 'jp-nbdeploy-actions');
    const swagger = button('Swagger UI', 'swagger', 'Open the Swagger UI of the service in a new tab');
    swagger.disabled = service.docs_uri === null;
    swagger.addEventListener('click', () => this._onAction({ kind: 'swagger', service }));
    const logs = button('Logs', 'logs', 'Show the recent log of the service');
    logs.addEventListener('click', () => this._onAction({ kind: 'logs', service }));
    const remove = button('Delete', 'delete', 'Stop and delete the service');
    remove.classList.add('jp-nbdeploy-danger');
    remove.addEventListener('click', () => this._onAction({ kind: 'delete', service }));
    actions.append(swagger, logs, remove);
    item.appendChild(actions);
    return item;
  }

  private _renderModels(models: IModelSummary[], targets: ITargetsResponse): void {
    const key = this._workspace.textContent + JSON.stringify([models, targets]);
    if (key === this._modelsKey) {
      return;
    }
    this._modelsKey = key;
    this._modelsTitle.textContent = `Models (${models.length})`;
    this._models.replaceChildren();
    if (models.length === 0) {
      this._models.appendChild(
        el('li', 'jp-nbdeploy-empty', 'No models. Register one with nbdeploy.register(obj, "name").')
      );
    }
    for (const model of models) {
      this._models.appendChild(this._modelItem(model, targets));
    }
  }

  private _modelItem(model: IModelSummary, targets: ITargetsResponse): HTMLLIElement {
    const item = el('li', 'jp-nbdeploy-item jp-nbdeploy-model');
    item.dataset.name = model.name;
    const head = el('div', 'jp-nbdeploy-item-head');
    head.appendChild(el('span', 'jp-nbdeploy-name', model.name));
    const version = el('span', 'jp-nbdeploy-version', `v${model.latest_version}`);
    version.title = `versions: ${model.versions.join(', ')}`;
    head.appendChild(version);
    const framework = model.framework_version
      ? `${model.framework} ${model.framework_version}`
      : model.framework;
    head.appendChild(el('span', 'jp-nbdeploy-framework', framework));
    item.appendChild(head);
    if (model.description) {
      item.appendChild(el('div', 'jp-nbdeploy-description', model.description));
    }
    const tags = Object.entries(model.tags);
    if (tags.length > 0) {
      const list = el('div', 'jp-nbdeploy-tags');
      for (const [key, value] of tags) {
        list.appendChild(el('span', 'jp-nbdeploy-tag', value ? `${key}=${value}` : key));
      }
      item.appendChild(list);
    }
    const select = this._targetSelect(model, targets);
    const choice = el('label', 'jp-nbdeploy-target-choice', 'target ');
    choice.appendChild(select);
    const line = el('code', 'jp-nbdeploy-deploy-line');
    const actions = el('div', 'jp-nbdeploy-actions');
    const copy = button('Copy %deploy', 'copy', '');
    const show = (): void => {
      line.textContent = deployLine(model, select.value, targets.default);
      copy.title = `Copy "${line.textContent}" to the clipboard`;
      const chosen = targets.targets.find(target => target.name === select.value);
      select.title = targetsTitle(chosen, targets.targets);
    };
    select.addEventListener('change', () => {
      this._targetChoice.set(model.name, select.value);
      show();
    });
    show();
    copy.addEventListener('click', () =>
      this._onAction({ kind: 'copy', model, line: line.textContent ?? '' })
    );
    actions.appendChild(copy);
    item.append(choice, line, actions);
    return item;
  }

  /** The target selector of a model: usable targets, the others disabled with why. */
  private _targetSelect(model: IModelSummary, targets: ITargetsResponse): HTMLSelectElement {
    const select = el('select', 'jp-nbdeploy-target-select');
    select.dataset.name = model.name;
    select.setAttribute('aria-label', `Deployment target for ${model.name}`);
    for (const target of targets.targets) {
      const label = target.usable ? target.name : `${target.name} (unavailable)`;
      const option = el('option', 'jp-nbdeploy-target-option', label);
      option.value = target.name;
      option.disabled = !target.usable;
      option.title = target.usable ? target.description : (target.reason ?? '');
      select.appendChild(option);
    }
    // The choice made before a redraw stays, while that target can still be used.
    const kept = this._targetChoice.get(model.name);
    const usable = targets.targets.some(target => target.name === kept && target.usable);
    select.value = kept !== undefined && usable ? kept : targets.default;
    return select;
  }

  private readonly _onAction: (action: PanelAction) => void;
  private readonly _interval: number;
  private readonly _workspace: HTMLDivElement;
  private readonly _origin: HTMLDivElement;
  private readonly _context: () => string | null;
  private readonly _error: HTMLDivElement;
  private readonly _servicesTitle: HTMLHeadingElement;
  private readonly _services: HTMLUListElement;
  private readonly _modelsTitle: HTMLHeadingElement;
  private readonly _models: HTMLUListElement;
  private _timer: number | null = null;
  private _inFlight: Promise<void> | null = null;
  private _servicesKey = '';
  private _modelsKey = '';
  private _targets: ITargetsResponse | null = null;
  /** The target chosen for each model name, kept across redraws. */
  private readonly _targetChoice = new Map<string, string>();
}
