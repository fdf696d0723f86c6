/**
 * Typed client for the nbdeploy server routes (nbdeploy/lab/handlers.py).
 *
 * The interfaces mirror the JSON built in nbdeploy/lab/views.py; change both together.
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The kernel whose workspace the panel shows (the active notebook's), or null for
 * the Jupyter server's default workspace. Every call sends it as ?kernel=<id>.
 */
let currentKernel: string | null = null;

/** Follow the workspace of this kernel from now on (null: the server's). */
export function setKernel(id: string | null): void {
  currentKernel = id;
}

/** The kernel the calls follow now. */
export function getKernel(): string | null {
  return currentKernel;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * A service URL reached through the Jupyter server's proxy (nbdeploy/lab/proxy.py):
 * http://127.0.0.1:5001/docs -> <base>/nbdeploy/proxy/5001/docs. A service listens on
 * the loopback of the kernel's machine, which the browser may not be on (JupyterHub,
 * Binder, SSH); the Jupyter server always is. Other URLs are returned as they are.
 */
export function proxyUrl(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return uri;
  }
  if (url.protocol !== 'http:' || !LOOPBACK.has(url.hostname) || !url.port) {
    return uri;
  }
  return URLExt.join(PageConfig.getBaseUrl(), 'nbdeploy', 'proxy', url.port) + url.pathname + url.search;
}

/** The states of a service (nbdeploy.core.services.ServiceState). */
export type ServiceState =
  | 'Transitioning'
  | 'Healthy'
  | 'Unhealthy'
  | 'Unschedulable'
  | 'Failed';

/** One registered model name, described by its latest version. */
export interface IModelSummary {
  name: string;
  latest_version: number;
  versions: number[];
  framework: string;
  framework_version: string | null;
  description: string;
  tags: Record<string, string>;
  created: string;
}

/** One deployed service, with its live state. */
export interface IServiceSummary {
  name: string;
  target: string;
  state: ServiceState;
  scoring_uri: string | null;
  swagger_uri: string | null;
  /** The service's Swagger UI page (GET /docs), when it can be told. */
  docs_uri: string | null;
  models: string[];
  error: string | null;
  /** Why the live state could not be read (the state shown is the last recorded). */
  probe_error: string | null;
  created: string;
  updated: string;
  generation: number;
}

/** One deployment target, as GET /nbdeploy/api/targets lists it. */
export interface ITargetSummary {
  name: string;
  /** Whether a deploy to it can work from the Jupyter server's Python. */
  usable: boolean;
  /** Where the target runs a service, in one line. */
  description: string;
  /** When not usable: why, and how to get it (null when usable). */
  reason: string | null;
}

export interface ITargetsResponse {
  /** The target %deploy uses without --target. */
  default: string;
  targets: ITargetSummary[];
}

/** Where the workspace shown comes from: the kernel's note, or the server's default. */
export type WorkspaceSource = 'kernel' | 'server';

export interface IModelsResponse {
  workspace: string;
  source: WorkspaceSource;
  models: IModelSummary[];
}

export interface IServicesResponse {
  workspace: string;
  source: WorkspaceSource;
  services: IServiceSummary[];
}

export interface ILogsResponse {
  name: string;
  tail: number;
  logs: string;
}

export interface IDeleteResponse {
  name: string;
  deleted: boolean;
}

/** The error body every route sends: {"message": ...}. */
interface IErrorBody {
  message: string;
}

function isErrorBody(value: unknown): value is IErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/** A failed call, with the HTTP status and the server's message. */
export class NbdeployApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'NbdeployApiError';
  }
}

async function request<T>(
  path: string[],
  init: RequestInit = {},
  query: Record<string, string> = {},
  kernel: string | null = currentKernel
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  if (kernel) {
    query = { ...query, kernel };
  }
  let url = URLExt.join(settings.baseUrl, 'nbdeploy', 'api', ...path.map(encodeURIComponent));
  const search = new URLSearchParams(query).toString();
  if (search) {
    url += `?${search}`;
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new NbdeployApiError(0, `the Jupyter server cannot be reached: ${String(error)}`);
  }
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const message = isErrorBody(body) ? body.message : `${response.status} ${response.statusText}`;
    throw new NbdeployApiError(response.status, message);
  }
  return body as T;
}

/** GET /nbdeploy/api/models */
export function fetchModels(): Promise<IModelsResponse> {
  return request<IModelsResponse>(['models']);
}

/** GET /nbdeploy/api/services */
export function fetchServices(): Promise<IServicesResponse> {
  return request<IServicesResponse>(['services']);
}

/** GET /nbdeploy/api/targets (the same for every workspace: no ?kernel=) */
export function fetchTargets(): Promise<ITargetsResponse> {
  return request<ITargetsResponse>(['targets'], {}, {}, null);
}

/** GET /nbdeploy/api/services/<name>/logs?tail=N (in the workspace of `kernel`) */
export function fetchLogs(
  name: string,
  tail = 200,
  kernel: string | null = currentKernel
): Promise<ILogsResponse> {
  return request<ILogsResponse>(['services', name, 'logs'], {}, { tail: String(tail) }, kernel);
}

/** DELETE /nbdeploy/api/services/<name> (in the workspace of `kernel`) */
export function deleteService(
  name: string,
  kernel: string | null = currentKernel
): Promise<IDeleteResponse> {
  return request<IDeleteResponse>(['services', name], { method: 'DELETE' }, {}, kernel);
}

/**
 * The notebook line that deploys a model version to `target`; the default target
 * (local) needs no --target: `%deploy doubler:1`, `%deploy doubler:1 --target ray`.
 */
export function deployLine(model: IModelSummary, target = 'local', defaultTarget = 'local'): string {
  const line = `%deploy ${model.name}:${model.latest_version}`;
  return target === defaultTarget ? line : `${line} --target ${target}`;
}
