/**
 * Makes nbdeploy's HTML outputs (service cards, Swagger tables, service lists) work
 * wherever JupyterLab runs, without running code from the notebook:
 *
 * - links to a service on the kernel's loopback (http://127.0.0.1:PORT/docs) go
 *   through the Jupyter server's proxy, which the browser can always reach
 *   (JupyterHub, Binder, SSH); the text still shows the service's own URL;
 * - code blocks (client snippets, example requests) get a Copy button.
 *
 * The kernel's HTML carries only class names (no script); this module finds them as
 * they are added to the page. A saved notebook on GitHub shows the plain HTML.
 */
import { Clipboard } from '@jupyterlab/apputils';

import { proxyUrl } from './api';

/** Outputs of nbdeploy's notebook front. */
const OUTPUTS = '.nbdeploy-service-card, .nbdeploy-swagger, .nbdeploy-services';
/** Code blocks a user copies. */
const COPYABLE =
  'pre.nbdeploy-snippet-python, pre.nbdeploy-snippet-curl, pre.nbdeploy-example-request, pre.nbdeploy-example-response';

const WATCHED = `${OUTPUTS}, ${COPYABLE}`;

function enhance(root: ParentNode): void {
  root.querySelectorAll<HTMLElement>(OUTPUTS).forEach(output => {
    output.querySelectorAll<HTMLAnchorElement>('a[href]').forEach(link => {
      if (link.dataset.nbdeployProxied) {
        return;
      }
      const original = link.getAttribute('href') ?? '';
      const proxied = proxyUrl(original);
      link.dataset.nbdeployProxied = 'true';
      if (proxied !== original) {
        link.href = proxied;
        link.title = `${original} (opened through the Jupyter server)`;
        link.classList.add('jp-nbdeploy-proxied');
      }
    });
  });
  root.querySelectorAll<HTMLPreElement>(COPYABLE).forEach(pre => {
    if (pre.dataset.nbdeployCopy) {
      return;
    }
    pre.dataset.nbdeployCopy = 'true';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'jp-nbdeploy-action jp-nbdeploy-copy';
    button.textContent = 'Copy';
    button.title = 'Copy to the clipboard';
    button.addEventListener('click', () => {
      Clipboard.copyToSystem(pre.textContent ?? '');
      button.textContent = 'Copied';
      window.setTimeout(() => (button.textContent = 'Copy'), 1500);
    });
    const holder = document.createElement('div');
    holder.className = 'jp-nbdeploy-copy-row';
    holder.appendChild(button);
    pre.insertAdjacentElement('beforebegin', holder);
  });
}

/** Watch the page for nbdeploy outputs (once per page). */
export function watchOutputs(): MutationObserver {
  enhance(document);
  const observer = new MutationObserver(mutations => {
    for (const mutation of mutations) {
      mutation.addedNodes.forEach(node => {
        // Only subtrees that hold an nbdeploy output: typing in an editor adds nodes too.
        if (node instanceof HTMLElement && (node.matches(WATCHED) || node.querySelector(WATCHED))) {
          enhance(node.parentElement ?? node);
        }
      });
    }
  });
  observer.observe(document.body, { childList: true, subtree: true });
  return observer;
}
