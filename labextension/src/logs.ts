/**
 * A main-area tab with the recent log of one service.
 */
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { refreshIcon, textEditorIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { fetchLogs } from './api';

/** The log text of one service, read again on demand. */
export class ServiceLogsView extends Widget {
  constructor(
    readonly serviceName: string,
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

  /** Fetch the last `tail` lines and show them (or the error). */
  async load(): Promise<void> {
    this._status.textContent = `Reading the last ${this.tail} lines…`;
    try {
      const reply = await fetchLogs(this.serviceName, this.tail);
      this._pre.textContent = reply.logs || '(the log is empty)';
      this._status.textContent = `Last ${reply.tail} lines of ${reply.name}, read at ${new Date().toLocaleTimeString()}`;
      this._pre.scrollTop = this._pre.scrollHeight;
    } catch (error) {
      this._status.textContent = `Cannot read the log of ${this.serviceName}: ${
        error instanceof Error ? error.message : String(error)
      }`;
    }
  }

  private readonly _status: HTMLDivElement;
  private readonly _pre: HTMLPreElement;
}

/** Build the tab (not yet attached): content plus a Refresh button. */
export function createLogsWidget(name: string): MainAreaWidget<ServiceLogsView> {
  const content = new ServiceLogsView(name);
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
  return widget;
}
