/**
 * MIME renderers: nbdeploy objects displayed in a notebook render natively in JupyterLab.
 *
 * - `application/vnd.nbdeploy.service+json`: a service card. Payload: the same JSON as
 *   one entry of GET /nbdeploy/api/services (IServiceSummary); only `name`, `target`
 *   and `state` are required.
 * - `application/vnd.nbdeploy.swagger+json`: an OpenAPI (Swagger 2.0 or OpenAPI 3)
 *   document as readable tables. Payload: {"name": str | null, "docs_uri": str | null,
 *   "spec": <the document>}.
 *
 * Everything is written with textContent (never innerHTML), so payloads are escaped.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { IServiceSummary, proxyUrl } from './api';
import { runCommand } from './bridge';

export const SERVICE_MIME = 'application/vnd.nbdeploy.service+json';
export const SWAGGER_MIME = 'application/vnd.nbdeploy.swagger+json';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: Json | undefined): string {
  return typeof value === 'string' ? value : '';
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  content?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (content !== undefined) {
    node.textContent = content;
  }
  return node;
}

function link(href: string, label: string): HTMLAnchorElement {
  const node = el('a', 'jp-nbdeploy-link', label);
  // Only http(s) links: a payload must not smuggle javascript: URLs into the page.
  if (/^https?:\/\//i.test(href)) {
    node.href = href;
  }
  node.target = '_blank';
  node.rel = 'noopener noreferrer';
  return node;
}

function asService(data: unknown): Partial<IServiceSummary> & { name: string } {
  if (!isObject(data) || typeof data.name !== 'string') {
    throw new Error('the service payload needs at least a "name" string');
  }
  return data as unknown as Partial<IServiceSummary> & { name: string };
}

/** The service card. */
export class ServiceCard extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly _mimeType: string) {
    super();
    this.addClass('jp-nbdeploy-card');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.node.replaceChildren();
    let service: Partial<IServiceSummary> & { name: string };
    try {
      service = asService(model.data[this._mimeType]);
    } catch (error) {
      this.node.appendChild(el('div', 'jp-nbdeploy-error', String(error)));
      return Promise.resolve();
    }
    const state = service.state ?? 'Transitioning';
    const head = el('div', 'jp-nbdeploy-item-head');
    head.appendChild(el('span', 'jp-nbdeploy-name', service.name));
    head.appendChild(
      el('span', `jp-nbdeploy-badge jp-nbdeploy-state-${state.toLowerCase()}`, state)
    );
    this.node.appendChild(head);

    const details = el('dl', 'jp-nbdeploy-details');
    const add = (label: string, value: string | HTMLElement): void => {
      details.appendChild(el('dt', '', label));
      const dd = el('dd', 'jp-nbdeploy-uri');
      if (typeof value === 'string') {
        dd.textContent = value;
      } else {
        dd.appendChild(value);
      }
      details.appendChild(dd);
    };
    add('target', service.target ?? '—');
    add('scoring URI', service.scoring_uri ?? '—');
    if (service.swagger_uri) {
      add('swagger', link(proxyUrl(service.swagger_uri), service.swagger_uri));
    }
    add('models', (service.models ?? []).join(', ') || '—');
    this.node.appendChild(details);
    if (service.error) {
      this.node.appendChild(el('div', 'jp-nbdeploy-service-error', service.error));
    }

    const actions = el('div', 'jp-nbdeploy-actions');
    if (service.docs_uri) {
      const docs = link(proxyUrl(service.docs_uri), 'Swagger UI');
      docs.classList.add('jp-nbdeploy-action');
      actions.appendChild(docs);
    }
    const logs = el('button', 'jp-nbdeploy-action', 'Logs');
    logs.type = 'button';
    logs.dataset.action = 'logs';
    logs.addEventListener('click', () => runCommand('logs', { name: service.name }));
    const panel = el('button', 'jp-nbdeploy-action', 'Deployments panel');
    panel.type = 'button';
    panel.addEventListener('click', () => runCommand('open', {}));
    actions.append(logs, panel);
    this.node.appendChild(actions);
    return Promise.resolve();
  }
}

/** One row per property of an object schema (recursing into array items). */
function schemaTable(schema: JsonObject, resolve: (s: JsonObject) => JsonObject): HTMLElement {
  const root = resolve(schema);
  const table = el('table', 'jp-nbdeploy-schema');
  const header = el('tr', '');
  for (const label of ['field', 'type', 'format', 'nullable', 'description']) {
    header.appendChild(el('th', '', label));
  }
  table.appendChild(header);
  const walk = (node: JsonObject, prefix: string): void => {
    const resolved = resolve(node);
    const props = resolved.properties;
    if (isObject(props)) {
      for (const [name, child] of Object.entries(props)) {
        if (!isObject(child)) {
          continue;
        }
        const field = resolve(child);
        const row = el('tr', '');
        const type = Array.isArray(field.type) ? field.type.join(' | ') : text(field.type);
        const nullable =
          field.nullable === true || (Array.isArray(field.type) && field.type.includes('null'));
        const enumValues = Array.isArray(field.enum) ? ` (one of ${field.enum.join(', ')})` : '';
        row.append(
          el('td', 'jp-nbdeploy-field', `${prefix}${name}`),
          el('td', '', type || 'any'),
          el('td', '', text(field.format)),
          el('td', '', nullable ? 'yes' : ''),
          el('td', '', text(field.description) + enumValues)
        );
        table.appendChild(row);
        walk(field, `${prefix}${name}.`);
        if (isObject(field.items)) {
          walk(field.items, `${prefix}${name}[].`);
        }
      }
    }
  };
  walk(root, '');
  if (isObject(root.items)) {
    walk(root.items, '[].');
  }
  if (table.rows.length === 1) {
    const row = el('tr', '');
    const type = text(root.type) || 'any';
    row.append(el('td', 'jp-nbdeploy-field', '(body)'), el('td', '', type));
    table.appendChild(row);
  }
  return table;
}

/** The OpenAPI document as readable tables with examples. */
export class SwaggerView extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly _mimeType: string) {
    super();
    this.addClass('jp-nbdeploy-swagger');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.node.replaceChildren();
    const payload = model.data[this._mimeType];
    if (!isObject(payload) || !isObject(payload.spec)) {
      this.node.appendChild(
        el('div', 'jp-nbdeploy-error', 'the swagger payload needs a "spec" object')
      );
      return Promise.resolve();
    }
    const spec = payload.spec;
    const definitions: JsonObject = isObject(spec.definitions)
      ? spec.definitions
      : isObject(spec.components) && isObject(spec.components.schemas)
        ? spec.components.schemas
        : {};
    const resolve = (schema: JsonObject): JsonObject => {
      let current = schema;
      for (let depth = 0; depth < 10 && typeof current.$ref === 'string'; depth++) {
        const target = definitions[current.$ref.split('/').pop() ?? ''];
        if (!isObject(target)) {
          break;
        }
        current = target;
      }
      return current;
    };

    const info = isObject(spec.info) ? spec.info : {};
    const head = el('div', 'jp-nbdeploy-item-head');
    head.appendChild(el('span', 'jp-nbdeploy-name', text(info.title) || text(payload.name)));
    head.appendChild(
      el(
        'span',
        'jp-nbdeploy-version',
        spec.swagger ? `Swagger ${text(spec.swagger)}` : `OpenAPI ${text(spec.openapi)}`
      )
    );
    this.node.appendChild(head);
    if (info.description) {
      this.node.appendChild(el('div', 'jp-nbdeploy-description', text(info.description)));
    }
    if (typeof payload.docs_uri === 'string') {
      this.node.appendChild(link(proxyUrl(payload.docs_uri), 'Open the interactive Swagger UI'));
    }

    const paths = isObject(spec.paths) ? spec.paths : {};
    for (const [path, operations] of Object.entries(paths)) {
      if (!isObject(operations)) {
        continue;
      }
      for (const [method, operation] of Object.entries(operations)) {
        if (!isObject(operation)) {
          continue;
        }
        const section = el('section', 'jp-nbdeploy-operation');
        const title = el('h4', '');
        title.append(
          el('span', `jp-nbdeploy-method jp-nbdeploy-method-${method}`, method.toUpperCase()),
          el('code', '', ` ${path}`),
          el('span', 'jp-nbdeploy-opid', ` ${text(operation.operationId)}`)
        );
        section.appendChild(title);
        const description = text(operation.description) || text(operation.summary);
        if (description) {
          section.appendChild(el('div', 'jp-nbdeploy-description', description));
        }
        // Request: Swagger 2 body parameter, or OpenAPI 3 requestBody.
        let requestSchema: JsonObject | null = null;
        let requestExample: Json | undefined;
        if (Array.isArray(operation.parameters)) {
          for (const parameter of operation.parameters) {
            if (isObject(parameter) && parameter.in === 'body' && isObject(parameter.schema)) {
              requestSchema = parameter.schema;
              requestExample = resolve(parameter.schema).example;
            }
          }
        }
        const body = isObject(operation.requestBody) ? operation.requestBody : null;
        const content = body && isObject(body.content) ? body.content['application/json'] : null;
        if (isObject(content) && isObject(content.schema)) {
          requestSchema = content.schema;
          requestExample = content.example ?? resolve(content.schema).example;
        }
        if (requestSchema) {
          section.appendChild(el('h5', '', 'Request body'));
          section.appendChild(schemaTable(requestSchema, resolve));
          if (requestExample !== undefined) {
            section.appendChild(el('pre', 'jp-nbdeploy-example', JSON.stringify(requestExample, null, 2)));
          }
        }
        const responses = isObject(operation.responses) ? operation.responses : {};
        for (const [status, response] of Object.entries(responses)) {
          if (!isObject(response)) {
            continue;
          }
          section.appendChild(el('h5', '', `Response ${status}: ${text(response.description)}`));
          let schema: Json | undefined = response.schema;
          let example: Json | undefined = isObject(response.examples)
            ? response.examples['application/json']
            : undefined;
          if (isObject(response.content) && isObject(response.content['application/json'])) {
            const media = response.content['application/json'] as JsonObject;
            schema = media.schema;
            example = media.example ?? example;
          }
          if (isObject(schema)) {
            section.appendChild(schemaTable(schema, resolve));
            example = example ?? resolve(schema).example;
          }
          if (example !== undefined) {
            section.appendChild(el('pre', 'jp-nbdeploy-example', JSON.stringify(example, null, 2)));
          }
        }
        this.node.appendChild(section);
      }
    }
    return Promise.resolve();
  }
}

const extension: IRenderMime.IExtension = {
  id: 'nbdeploy:mime',
  description: 'Renders nbdeploy service cards and OpenAPI documents.',
  rendererFactory: {
    safe: true,
    mimeTypes: [SERVICE_MIME, SWAGGER_MIME],
    createRenderer: (options: IRenderMime.IRendererOptions) =>
      options.mimeType === SERVICE_MIME
        ? new ServiceCard(options.mimeType)
        : new SwaggerView(options.mimeType)
  },
  rank: 0,
  dataType: 'json'
};

export default extension;
