/**
 * A main-area tab with the recent log of one service; "Follow" streams new lines.
 */
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { refreshIcon, runIcon, textEditorIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { fetchLogs } from './api';

/** The log text of one service, read again on demand or every second (follow). */
export class ServiceLogsView extends Widget {
  /**
   * @param serviceName the service
   * @param kernel the kernel whose workspace holds it (the panel's when the tab opened)
   */
  constructor(
    readonly serviceName: string,
    readonly kernel: string | null,
    readonly tail: number = 200
  ) {
    super();
    this.addClass('jp-nbdeploy-logs-view');
    this._status = document.createElement('div');
    this._status.className = 'jp-nbdeploy-logs-status';
    this._pre = document.createElement('pre');
    this._pre.className = 'jp-nbdeploy-logs';
    this.node.append(this._status, this._pre);
  }

  /** Whether new lines are read every second. */
  get following(): boolean {
    return this._timer !== null;
  }

  /** Fetch the last `tail` lines and show them (or the error). */
  async load(): Promise<void> {
    if (!this.following) {
      this._status.textContent = `Reading the last ${this.tail} lines…`;
    }
    try {
      const reply = await fetchLogs(this.serviceName, this.tail, this.kernel);
      // Keep the reader's place unless they were at the end already.
      const atEnd = this._pre.scrollTop + this._pre.clientHeight >= this._pre.scrollHeight - 4;
      this._pre.textContent = reply.logs || '(the log is empty)';
      const when = new Date().toLocaleTimeString();
      this._status.textContent = this.following
        ? `Following ${reply.name} (last ${reply.tail} lines, ${when})`
        : `Last ${reply.tail} lines of ${reply.name}, read at ${when}`;
      if (atEnd || !this.following) {
        this._pre.scrollTop = this._pre.scrollHeight;
      }
    } catch (error) {
      this._status.textContent = `Cannot read the log of ${this.serviceName}: ${
        error instanceof Error ? error.message : String(error)
      }`;
      this.stopFollowing();
    }
  }

  /** Read new lines every `interval` ms until stopFollowing(). */
  follow(interval = 1000): void {
    if (this._timer !== null) {
      return;
    }
    this._timer = window.setInterval(() => void this.load(), interval);
    this.node.dataset.following = 'true';
    void this.load();
  }

  stopFollowing(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
    this.node.dataset.following = 'false';
  }

  dispose(): void {
    this.stopFollowing();
    super.dispose();
  }

  private readonly _status: HTMLDivElement;
  private readonly _pre: HTMLPreElement;
  private _timer: number | null = null;
}

/** Build the tab (not yet attached): content plus Refresh and Follow buttons. */
export function createLogsWidget(
  name: string,
  kernel: string | null
): MainAreaWidget<ServiceLogsView> {
  const content = new ServiceLogsView(name, kernel);
  const widget = new MainAreaWidget<ServiceLogsView>({ content });
  widget.id = `nbdeploy-logs-${name}`;
  widget.addClass('jp-nbdeploy-logs-widget');
  widget.title.label = `Logs: ${name}`;
  widget.title.icon = textEditorIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: 'Read the log again',
      onClick: () => void content.load()
    })
  );
  const follow: ToolbarButton = new ToolbarButton({
    icon: runIcon,
    label: 'Follow',
    className: 'jp-nbdeploy-follow',
    tooltip: 'Show new lines as they come (every second)',
    onClick: () => {
      if (content.following) {
        content.stopFollowing();
      } else {
        content.follow();
      }
      follow.node.dataset.following = String(content.following);
    }
  });
  widget.toolbar.addItem('follow', follow);
  return widget;
}
