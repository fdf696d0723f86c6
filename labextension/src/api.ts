/**
 * Typed client for the nbdeploy server routes (nbdeploy/lab/handlers.py).
 *
 * The interfaces mirror the JSON built in nbdeploy/lab/views.py; change both together.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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

export interface IModelsResponse {
  workspace: string;
  models: IModelSummary[];
}

export interface IServicesResponse {
  workspace: string;
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
  query: Record<string, string> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
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

/** GET /nbdeploy/api/services/<name>/logs?tail=N */
export function fetchLogs(name: string, tail = 200): Promise<ILogsResponse> {
  return request<ILogsResponse>(['services', name, 'logs'], {}, { tail: String(tail) });
}

/** DELETE /nbdeploy/api/services/<name> */
export function deleteService(name: string): Promise<IDeleteResponse> {
  return request<IDeleteResponse>(['services', name], { method: 'DELETE' });
}

/** The notebook line that deploys a model version. */
export function deployLine(model: IModelSummary): string {
  return `%deploy ${model.name}:${model.latest_version}`;
}
