'use strict';
// A client of the partner Audience API v1 (docs/partner-api.md) on Node's built-in
// fetch. An access token is kept until it expires or a 401 says so, then refreshed once and
// the call re-sent. Errors are typed; their messages never carry a secret.

const MAX_OPERATIONS_PER_REQUEST = 10000;
const MAX_IDENTIFIERS_PER_OPERATION = 10;
const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** The smallest body limit kept to: an operation of 10 identifiers fits. */
const MIN_BODY_BYTES = 4 * 1024;
/** Per partner request: under the platform's 10 s per call, so the plugin still answers. */
const REQUEST_TIMEOUT_MS = 8000;
const TOKEN_MARGIN_SECONDS = 30;
const REFRESHABLE_401 = new Set(['EXPIRED_ACCESS_TOKEN', 'REVOKED_ACCESS_TOKEN', 'INVALID_ACCESS_TOKEN']);
const BODY_HEAD = '{"operations":[';
const BODY_TAIL = '],"partial_failure":true}';

/** The partner refused a call: HTTP `status` (null: no answer), error `code`, `retryAfter`
 * seconds when it said so, `details` as sent. */
class PartnerError extends Error {
  constructor(status, code, message, { retryAfter = null, details = [] } = {}) {
    const got = status === null ? 'no answer' : `HTTP ${status}`;
    super(`partner ${got} ${code}: ${message}`);
    this.name = 'PartnerError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

/** The partner refused the refresh token (400 invalid_grant): a user must log in again. */
class ReauthenticationNeeded extends PartnerError {
  constructor(...args) {
    super(...args);
    this.name = 'ReauthenticationNeeded';
  }
}

/** A transient failure: 5xx, dropped connection or timeout. Re-sending later is safe. */
class PartnerUnavailable extends PartnerError {
  constructor(...args) {
    super(...args);
    this.name = 'PartnerUnavailable';
  }
}

/** One refresh token and the access token it currently gives (shared across feeds). */
class TokenSession {
  constructor(refreshToken) {
    this.refreshToken = refreshToken;
    this.accessToken = null;
    this.expiresAt = 0;
    this.refreshes = 0;
    this.refreshing = null; // the in-flight refresh, so concurrent calls make one request
  }
}

const nowSeconds = () => Date.now() / 1000;

class PartnerClient {
  /**
   * @param {object} options
   * @param {string} options.endpoint partner base URL
   * @param {{clientId: string, clientSecret: string}} options.oauth
   * @param {TokenSession|null} options.session
   * @param {string} [options.apiVersion]
   * @param {number} [options.maxOperations]
   * @param {number} [options.maxBodyBytes] the partner's body limit (kept within 5 MiB)
   */
  constructor({
    endpoint,
    oauth,
    session,
    apiVersion = 'v1',
    maxOperations = MAX_OPERATIONS_PER_REQUEST,
    maxBodyBytes = MAX_BODY_BYTES,
  }) {
    this.endpoint = endpoint.replace(/\/+$/, '');
    this.oauth = oauth;
    this.session = session;
    this.apiVersion = apiVersion.replace(/^\/+|\/+$/g, '') || 'v1';
    this.maxOperations = Math.max(1, Math.min(maxOperations, MAX_OPERATIONS_PER_REQUEST));
    this.maxBodyBytes = Math.max(MIN_BODY_BYTES, Math.min(maxBodyBytes, MAX_BODY_BYTES));
  }

  // ---------------------------------------------------------------- OAuth

  /** Refresh the session's access token now (one request even if called concurrently). */
  async refresh() {
    const session = this.requireSession();
    if (session.refreshing) return session.refreshing;
    session.refreshing = (async () => {
      try {
        const grant = await this.tokenRequest({ grant_type: 'refresh_token', refresh_token: session.refreshToken });
        session.accessToken = grant.accessToken;
        const margin = Math.min(TOKEN_MARGIN_SECONDS, grant.expiresIn * 0.1);
        session.expiresAt = nowSeconds() + grant.expiresIn - margin;
        session.refreshes += 1;
        return grant.accessToken;
      } finally {
        session.refreshing = null;
      }
    })();
    return session.refreshing;
  }

  // ---------------------------------------------------------------- segments

  /** Create a segment; a 409 SEGMENT_NAME_TAKEN reuses the existing segment's id. */
  async createSegment(accountId, name, description) {
    const body = { name };
    if (description) body.description = description;
    let payload;
    try {
      payload = await this.jsonCall('POST', `/accounts/${seg(accountId)}/segments`, { body: JSON.stringify(body) });
    } catch (err) {
      const existing = existingSegmentId(err);
      if (existing === null) throw err;
      return { id: existing, created: false };
    }
    const id = payload && typeof payload === 'object' ? payload.id : undefined;
    if (typeof id !== 'string' || !id) throw new PartnerError(201, 'NO_SEGMENT_ID', 'the created segment has no id');
    return { id, created: true };
  }

  /** The API path of a segment. */
  segmentPath(segmentId) {
    return `/segments/${seg(segmentId)}`;
  }

  /** GET the segment as the partner shows it (here 404 SEGMENT_NOT_READY while provisioning). */
  async getSegment(segmentId) {
    const payload = await this.jsonCall('GET', this.segmentPath(segmentId));
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new PartnerError(200, 'UNEXPECTED_ANSWER', 'the segment answer is not an object');
    }
    return payload;
  }

  // ---------------------------------------------------------------- members

  /**
   * Send operations in requests within the partner's limits (`partial_failure: true`).
   * Stops at the first request that fails as a whole and reports it in `failure`; the
   * operations from `sent` on are then unknown (maybe applied).
   * @returns {Promise<{total: number, sent: number, rejected: Map<number, string>, failure: PartnerError|null}>}
   */
  async uploadMembers(segmentId, operations) {
    const result = { total: operations.length, sent: 0, rejected: new Map(), failure: null };
    const encoded = operations.map((op) => JSON.stringify(op));
    const path = `${this.segmentPath(segmentId)}/members`;
    for (const [start, stop] of chunks(encoded, this.maxOperations, this.maxBodyBytes)) {
      const body = BODY_HEAD + encoded.slice(start, stop).join(',') + BODY_TAIL;
      let payload;
      try {
        payload = await this.jsonCall('POST', path, { body });
      } catch (err) {
        if (!(err instanceof PartnerError)) throw err;
        result.failure = err;
        return result;
      }
      for (const [index, code] of itemErrors(payload, stop - start)) result.rejected.set(start + index, code);
      result.sent = stop;
    }
    return result;
  }

  // ---------------------------------------------------------------- transport

  requireSession() {
    if (!this.session) {
      throw new PartnerError(
        null,
        'NO_REFRESH_TOKEN',
        'no refresh token is configured for this partner client: put one in the credentials configuration file',
      );
    }
    return this.session;
  }

  async accessToken() {
    const session = this.requireSession();
    if (!session.accessToken || nowSeconds() >= session.expiresAt) return this.refresh();
    return session.accessToken;
  }

  /** The URL of an API path (`/segments/...`): under the version, `/v1/segments/...`. */
  apiUrl(path) {
    return `${this.endpoint}/${this.apiVersion}${path}`;
  }

  /** The headers of every API call besides the body's. */
  apiHeaders(token) {
    return { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  }

  /** The error code of an answer (null: none), in this API's error shape. */
  errorCode(response) {
    return errorCode(response.json);
  }

  /** One API call with the session's access token; on a 401 saying the token is expired,
   * revoked or invalid, refresh once and re-send once. A 2xx answer, else the error thrown. */
  async call(method, path, { body, query, headers } = {}) {
    const session = this.requireSession();
    let url = this.apiUrl(path);
    if (query) url += `?${new URLSearchParams(query).toString()}`;
    let token = await this.accessToken();
    let response = await this.send(method, url, token, body, headers);
    if (response.status === 401 && REFRESHABLE_401.has(this.errorCode(response))) {
      // refresh once (unless another call already did meanwhile) and re-send once
      token = session.accessToken && session.accessToken !== token ? session.accessToken : await this.refresh();
      response = await this.send(method, url, token, body, headers);
    }
    if (response.status < 200 || response.status >= 300) throw this.apiError(response);
    return response;
  }

  /** `call`, and the answer's JSON (null for an empty body). */
  async jsonCall(method, path, options) {
    const response = await this.call(method, path, options);
    if (!response.text) return null;
    if (response.json === undefined) {
      throw new PartnerError(response.status, 'NOT_JSON', `${method} ${path} answered a non-JSON body`);
    }
    return response.json;
  }

  async send(method, url, token, body, extraHeaders) {
    const headers = { ...this.apiHeaders(token), ...(extraHeaders || {}) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return this.fetchText(url, { method, headers, body }, `${method} ${new URL(url).pathname}`);
  }

  /** fetch + read the body; transport failures become PartnerUnavailable. */
  async fetchText(url, init, what) {
    let response;
    let text;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      text = await response.text();
    } catch (err) {
      if (err && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
        throw new PartnerUnavailable(null, 'TIMEOUT', `${what} timed out after ${REQUEST_TIMEOUT_MS} ms`);
      }
      const cause = err && err.cause && (err.cause.code || err.cause.name);
      throw new PartnerUnavailable(null, 'CONNECTION_FAILED', `${what}: ${cause || (err && err.name) || 'error'}`);
    }
    let json;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch (_) {
        json = undefined;
      }
    }
    return { status: response.status, statusText: response.statusText, headers: response.headers, text, json };
  }

  /** The OAuth token endpoint's path. */
  get tokenPath() {
    return '/oauth/token';
  }

  async tokenRequest(form) {
    const what = form.grant_type === 'refresh_token' ? 'refresh token' : 'authorization code';
    const data = new URLSearchParams({ ...form, client_id: this.oauth.clientId, client_secret: this.oauth.clientSecret });
    const where = `POST ${this.tokenPath}`;
    const response = await this.fetchText(
      `${this.endpoint}${this.tokenPath}`,
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: data.toString(),
      },
      where,
    );
    if (response.status === 200) {
      const payload = response.json;
      if (!payload || typeof payload.access_token !== 'string' || !payload.access_token) {
        throw new PartnerError(200, 'UNEXPECTED_ANSWER', `the ${this.tokenPath} answer has no access_token`);
      }
      return { accessToken: payload.access_token, expiresIn: Number(payload.expires_in) || 3600 };
    }
    const oauthError = oauthErrorCode(response.json);
    if (response.status >= 500) {
      throw new PartnerUnavailable(response.status, oauthError || 'SERVER_ERROR', `${where} failed`);
    }
    if (response.status === 429) {
      throw new PartnerError(429, oauthError || 'RATE_LIMITED', `${where} was rate limited`, {
        retryAfter: retryAfter(response.headers),
      });
    }
    if (oauthError === 'invalid_grant') {
      throw new ReauthenticationNeeded(
        response.status,
        'invalid_grant',
        `the partner refused the ${what} (invalid_grant: unknown, expired, revoked or already used): ` +
          're-authentication is needed, log in to the partner again and store the new refresh token',
      );
    }
    if (oauthError === 'invalid_client') {
      throw new PartnerError(
        response.status,
        'invalid_client',
        'the partner refused the OAuth client (invalid_client): check client_id and client_secret in the credentials configuration file',
      );
    }
    throw new PartnerError(response.status, oauthError || 'OAUTH_ERROR', `${where} for the ${what} failed`);
  }

  apiError(response) {
    const status = response.status;
    const error = errorObject(response.json);
    const code = String(error.code || `HTTP_${status}`);
    const message = this.scrub(String(error.message || response.statusText || 'error'));
    const details = Array.isArray(error.details) ? error.details : [];
    if (status >= 500) return new PartnerUnavailable(status, code, message, { details });
    return new PartnerError(status, code, message, {
      retryAfter: status === 429 ? retryAfter(response.headers) : null,
      details,
    });
  }

  /** A partner message with this client's secrets masked. */
  scrub(text) {
    const secrets = [this.oauth.clientSecret];
    if (this.session) secrets.push(this.session.refreshToken, this.session.accessToken);
    let out = text;
    for (const secret of secrets) if (secret) out = out.split(secret).join('***');
    return out;
  }
}

function seg(value) {
  return encodeURIComponent(value);
}

/** [start, stop) ranges of at most maxOperations operations within maxBytes, each range's
 * items joined by commas inside `overhead` bytes of envelope (default: this API's body). */
function* chunks(
  encoded,
  maxOperations,
  maxBytes = MAX_BODY_BYTES,
  overhead = Buffer.byteLength(BODY_HEAD) + Buffer.byteLength(BODY_TAIL),
) {
  let start = 0;
  let size = overhead;
  for (let index = 0; index < encoded.length; index += 1) {
    const count = index - start;
    const itemSize = Buffer.byteLength(encoded[index]);
    let extra = itemSize + (count ? 1 : 0);
    if (count && (count >= maxOperations || size + extra > maxBytes)) {
      yield [start, index];
      start = index;
      size = overhead;
      extra = itemSize;
    }
    size += extra;
  }
  if (start < encoded.length) yield [start, encoded.length];
}

/** [index, code] of the operations the partner rejected in one upload answer. */
function* itemErrors(payload, count) {
  const errors = payload && typeof payload === 'object' ? payload.errors : undefined;
  if (!Array.isArray(errors)) return;
  const seen = new Set();
  for (const item of errors) {
    if (!item || typeof item !== 'object') continue;
    const index = item.index;
    if (Number.isInteger(index) && index >= 0 && index < count && !seen.has(index)) {
      seen.add(index);
      yield [index, String(item.code || 'REJECTED')];
    }
  }
}

function errorObject(payload) {
  const error = payload && typeof payload === 'object' ? payload.error : undefined;
  return error && typeof error === 'object' && !Array.isArray(error) ? error : {};
}

function errorCode(payload) {
  const code = errorObject(payload).code;
  return typeof code === 'string' ? code : null;
}

function oauthErrorCode(payload) {
  const error = payload && typeof payload === 'object' ? payload.error : undefined;
  if (typeof error === 'string') return error;
  if (error && typeof error === 'object' && typeof error.code === 'string') return error.code;
  return null;
}

function retryAfter(headers) {
  const raw = headers.get('retry-after');
  if (raw === null) return null;
  const trimmed = raw.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) return null;
  return Number(trimmed);
}

function existingSegmentId(err) {
  if (!(err instanceof PartnerError) || err.status !== 409 || err.code !== 'SEGMENT_NAME_TAKEN') return null;
  for (const detail of err.details) {
    if (detail && typeof detail.segment_id === 'string') return detail.segment_id;
  }
  return null;
}

module.exports = {
  MAX_BODY_BYTES,
  MAX_IDENTIFIERS_PER_OPERATION,
  MAX_OPERATIONS_PER_REQUEST,
  PartnerClient,
  PartnerError,
  PartnerUnavailable,
  ReauthenticationNeeded,
  TokenSession,
  chunks,
  seg,
};
