/**
 * nbdeploy JupyterLab extension: the "Deployments" side panel and its commands.
 *
 * Every panel button runs a command, so the same actions are reachable from the
 * command palette and from other extensions (and from tests) with arguments.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  MainAreaWidget,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { Widget } from '@lumino/widgets';

import { deleteService, getKernel, NbdeployApiError, proxyUrl, setKernel } from './api';
import { setCommandRunner } from './bridge';
import { createLogsWidget, ServiceLogsView } from './logs';
import { watchOutputs } from './outputs';
import { DeploymentsPanel, PANEL_ID, PanelAction } from './panel';

/** What a notebook or console panel has (read without importing @jupyterlab/notebook). */
interface ISessionOwner {
  sessionContext: {
    session: { kernel: { id: string } | null } | null;
    kernelChanged: { connect: (slot: () => void) => void };
  };
}

function sessionOwner(widget: Widget | null): ISessionOwner | null {
  const context = (widget as unknown as Partial<ISessionOwner> | null)?.sessionContext;
  return context && context.kernelChanged ? (widget as unknown as ISessionOwner) : null;
}

const deployIconSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2 4 6v6c0 5 3.4 9.4 8 10 4.6-.6 8-5 8-10V6l-8-4zm0 4.2 4.5 4.5-1.4 1.4-2.1-2.1V17h-2V10l-2.1 2.1-1.4-1.4L12 6.2z"/>
  </g>
</svg>`;

export const deployIcon = new LabIcon({ name: 'nbdeploy:deployments', svgstr: deployIconSvg });

/** Command ids. */
export namespace CommandIDs {
  export const open = 'nbdeploy:open-deployments';
  export const refresh = 'nbdeploy:refresh-deployments';
  export const logs = 'nbdeploy:show-service-logs';
  export const remove = 'nbdeploy:delete-service';
  export const swagger = 'nbdeploy:open-swagger-ui';
  export const copyDeploy = 'nbdeploy:copy-deploy-line';
}

function stringArg(args: ReadonlyPartialJSONObject, key: string): string {
  const value = args[key];
  if (typeof value !== 'string' || value === '') {
    throw new Error(`nbdeploy command needs a string argument "${key}"`);
  }
  return value;
}

function message(error: unknown): string {
  if (error instanceof NbdeployApiError || error instanceof Error) {
    return error.message;
  }
  return String(error);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbdeploy:deployments',
  description: 'The Deployments side panel: models and services of the nbdeploy workspace.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const { commands } = app;
    const logWidgets = new Map<string, MainAreaWidget<ServiceLogsView>>();

    const onAction = (action: PanelAction): void => {
      switch (action.kind) {
        case 'swagger':
          void commands.execute(CommandIDs.swagger, {
            url: proxyUrl(action.service.docs_uri ?? '')
          });
          break;
        case 'logs':
          void commands.execute(CommandIDs.logs, { name: action.service.name });
          break;
        case 'delete':
          void commands.execute(CommandIDs.remove, { name: action.service.name });
          break;
        case 'copy':
          void commands.execute(CommandIDs.copyDeploy, { line: action.line });
          break;
      }
    };

    // The panel follows the workspace of the notebook (or console) last active: its
    // kernel noted which workspace it uses (nbdeploy/lab/kernels.py).
    let notebookLabel: string | null = null;
    const follow = (widget: Widget | null): void => {
      const owner = sessionOwner(widget);
      if (!owner || !widget) {
        return; // a file browser, a logs tab ...: keep the notebook shown before
      }
      notebookLabel = widget.title.label;
      const kernel = owner.sessionContext.session?.kernel?.id ?? null;
      if (kernel !== getKernel()) {
        setKernel(kernel);
        void panel.refresh();
      }
    };
    const panel = new DeploymentsPanel({ onAction, context: () => notebookLabel });
    const watched = new WeakSet<object>();
    labShell.currentChanged.connect((_, change) => {
      const owner = sessionOwner(change.newValue);
      if (owner && !watched.has(owner)) {
        watched.add(owner);
        owner.sessionContext.kernelChanged.connect(() => {
          if (labShell.currentWidget === (owner as unknown as Widget)) {
            follow(labShell.currentWidget);
          }
        });
      }
      follow(change.newValue);
    });
    watchOutputs();
    panel.title.icon = deployIcon;
    panel.title.caption = 'Deployments (nbdeploy)';
    labShell.add(panel, 'left', { rank: 900 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }

    commands.addCommand(CommandIDs.open, {
      label: 'Show Deployments',
      caption: 'Show the nbdeploy Deployments panel',
      execute: () => labShell.activateById(panel.id)
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Deployments',
      execute: () => panel.refresh()
    });

    commands.addCommand(CommandIDs.swagger, {
      label: 'Open Swagger UI of Service',
      execute: args => {
        window.open(stringArg(args, 'url'), '_blank', 'noopener');
      }
    });

    commands.addCommand(CommandIDs.logs, {
      label: 'Show Service Logs',
      execute: async args => {
        const name = stringArg(args, 'name');
        let widget = logWidgets.get(name);
        if (!widget || widget.isDisposed) {
          widget = createLogsWidget(name, getKernel());
          logWidgets.set(name, widget);
          widget.disposed.connect(() => logWidgets.delete(name));
          app.shell.add(widget, 'main');
        }
        app.shell.activateById(widget.id);
        await widget.content.load();
      }
    });

    commands.addCommand(CommandIDs.remove, {
      label: 'Delete Service',
      execute: async args => {
        const name = stringArg(args, 'name');
        const kernel = getKernel(); // the workspace shown when Delete was pressed
        const answer = await showDialog({
          title: 'Delete service',
          body: `Stop the service "${name}" and delete its record? Its scoring URI stops answering.`,
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
        });
        if (!answer.button.accept) {
          return;
        }
        try {
          await deleteService(name, kernel);
          Notification.success(`Service "${name}" deleted`, { autoClose: 3000 });
          logWidgets.get(name)?.dispose();
        } catch (error) {
          Notification.error(`Cannot delete service "${name}": ${message(error)}`);
        }
        await panel.refresh();
      }
    });

    commands.addCommand(CommandIDs.copyDeploy, {
      label: 'Copy %deploy Line',
      execute: args => {
        const line = stringArg(args, 'line');
        Clipboard.copyToSystem(line);
        Notification.info(`Copied: ${line}`, { autoClose: 3000 });
      }
    });

    setCommandRunner((command, args) =>
      commands.execute(command === 'logs' ? CommandIDs.logs : CommandIDs.open, args)
    );

    if (palette) {
      for (const command of [CommandIDs.open, CommandIDs.refresh]) {
        palette.addItem({ command, category: 'nbdeploy' });
      }
    }
  }
};

export default plugin;
