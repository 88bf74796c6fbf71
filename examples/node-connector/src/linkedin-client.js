'use strict';
// A client of LinkedIn's Marketing API for DMP segments (Matched Audiences), Rest.li 2.0, on
// Node's built-in fetch, written from LinkedIn's public documentation:
//
//   every /rest call: Authorization: Bearer <token>, LinkedIn-Version: YYYYMM,
//                     X-Restli-Protocol-Version: 2.0.0
//   POST /oauth/v2/accessToken                 (form) grant_type=refresh_token, ...
//   POST /rest/dmpSegments                     201, the id in x-restli-id (or Location)
//   GET  /rest/dmpSegments?q=account&account=<urn>&start=&count=
//   GET  /rest/dmpSegments/{id}
//   POST /rest/dmpSegments/{id}/users          X-RestLi-Method: BATCH_CREATE, answered
//                                              200 {"elements": [{"status"}, ...]} in order
//   errors: {"status", "serviceErrorCode", "code", "message"}; a 429 carries no Retry-After
//
// A subclass of the generic client (src/partner-client.js): its token session and refresh,
// transport, error classes and secret scrubbing serve LinkedIn as they are, so the plugin
// treats both partners' failures alike; what LinkedIn says differently is here. Messages
// never carry a secret.

const {
  MAX_BODY_BYTES,
  MAX_IDENTIFIERS_PER_OPERATION,
  PartnerClient,
  PartnerError,
  PartnerUnavailable,
  chunks,
  seg,
} = require('./partner-client');

const DEFAULT_VERSION = '202601';
const DEFAULT_BASE_PATH = '/rest';
const PROTOCOL_VERSION = '2.0.0';
const ACCOUNT_URN = 'urn:li:sponsoredAccount:';
const TOKEN_PATH = '/oauth/v2/accessToken';
/** LinkedIn's limit of elements per BATCH_CREATE (technical_config may say less). */
const MAX_ELEMENTS_PER_REQUEST = 5000;
/** Segments asked per page of the account finder. */
const PAGE_COUNT = 100;
const BODY_HEAD = '{"elements":[';
const BODY_TAIL = ']}';

class LinkedInClient extends PartnerClient {
  /**
   * @param {object} options
   * @param {string} options.endpoint scheme, host and port (no path)
   * @param {{clientId: string, clientSecret: string}} options.oauth
   * @param {TokenSession|null} options.session the generic client's token session
   * @param {string} [options.apiVersion] the LinkedIn-Version header (YYYYMM)
   * @param {string} [options.basePath] the API's base path (`/rest`)
   * @param {number} [options.maxOperations] elements per BATCH_CREATE (at most 5,000)
   * @param {number} [options.maxBodyBytes] the body limit (kept within 5 MiB)
   */
  constructor({
    endpoint,
    oauth,
    session,
    apiVersion = DEFAULT_VERSION,
    basePath = DEFAULT_BASE_PATH,
    maxOperations = MAX_ELEMENTS_PER_REQUEST,
    maxBodyBytes = MAX_BODY_BYTES,
  }) {
    super({ endpoint, oauth, session, apiVersion, maxOperations, maxBodyBytes });
    this.apiVersion = apiVersion.trim() || DEFAULT_VERSION;
    const trimmed = basePath.replace(/^\/+|\/+$/g, '');
    this.basePath = trimmed ? `/${trimmed}` : '';
    this.maxOperations = Math.min(this.maxOperations, MAX_ELEMENTS_PER_REQUEST);
  }

  /** POST /oauth/v2/accessToken (form-encoded): the generic client's refresh, at LinkedIn's path. */
  get tokenPath() {
    return TOKEN_PATH;
  }

  // ---------------------------------------------------------------- segments

  /** POST /rest/dmpSegments; a 409 (the name is taken in the account) reuses the account's
   * segment of that name, so a creation asked again is idempotent. */
  async createSegment(accountId, name, description) {
    const body = {
      name,
      account: ACCOUNT_URN + accountId,
      type: 'USER',
      sourcePlatform: 'STREAMING',
      accessPolicy: 'PRIVATE',
      destinations: [{ destination: 'LINKEDIN' }],
    };
    if (description) body.description = description;
    let response;
    try {
      response = await this.call('POST', '/dmpSegments', { body: JSON.stringify(body) });
    } catch (err) {
      if (!(err instanceof PartnerError) || err.status !== 409) throw err;
      const existing = await this.findSegmentByName(accountId, name);
      if (!existing) throw err;
      return { id: existing.id, created: false };
    }
    const id = response.headers.get('x-restli-id') || locationId(response.headers.get('location'));
    if (!id) throw new PartnerError(response.status, 'NO_SEGMENT_ID', 'the created DMP segment has no x-restli-id');
    return { id, created: true };
  }

  /** `/dmpSegments/{id}`: `getSegment` reads it as LinkedIn shows it. */
  segmentPath(segmentId) {
    return `/dmpSegments/${seg(segmentId)}`;
  }

  /** Every DMP segment of the account (the q=account finder, all pages), ids as text. */
  async listSegments(accountId) {
    const segments = [];
    let start = 0;
    for (;;) {
      const query = { q: 'account', account: ACCOUNT_URN + accountId, start: String(start), count: String(PAGE_COUNT) };
      const payload = await this.jsonCall('GET', '/dmpSegments', { query });
      const elements = payload && typeof payload === 'object' ? payload.elements : undefined;
      if (!Array.isArray(elements)) {
        throw new PartnerError(200, 'UNEXPECTED_ANSWER', "the DMP segment list has no 'elements' list");
      }
      for (const element of elements) {
        if (element && typeof element === 'object' && element.id !== undefined && element.id !== null) {
          segments.push({ ...element, id: String(element.id) });
        }
      }
      const paging = payload.paging && typeof payload.paging === 'object' ? payload.paging : {};
      start += elements.length;
      if (!elements.length || !Number.isInteger(paging.total) || start >= paging.total) return segments;
    }
  }

  /** The account's DMP segment named exactly `name`, or null. */
  async findSegmentByName(accountId, name) {
    const segments = await this.listSegments(accountId);
    return segments.find((segment) => segment.name === name) || null;
  }

  // ---------------------------------------------------------------- users

  /**
   * Send the elements in BATCH_CREATE requests within the element and byte limits; each
   * element's status says whether LinkedIn took it. Stops at the first request that fails
   * as a whole and reports it in `failure` (the elements from `sent` on are unknown). A 404
   * on /users of a segment that reads fine is SEGMENT_NOT_READY (still provisioning).
   * @returns {Promise<{total: number, sent: number, rejected: Map<number, string>, failure: PartnerError|null}>}
   */
  async uploadMembers(segmentId, elements) {
    const result = { total: elements.length, sent: 0, rejected: new Map(), failure: null };
    const encoded = elements.map((element) => JSON.stringify(element));
    const path = `${this.segmentPath(segmentId)}/users`;
    const overhead = Buffer.byteLength(BODY_HEAD) + Buffer.byteLength(BODY_TAIL);
    for (const [start, stop] of chunks(encoded, this.maxOperations, this.maxBodyBytes, overhead)) {
      const body = BODY_HEAD + encoded.slice(start, stop).join(',') + BODY_TAIL;
      let payload;
      try {
        payload = await this.jsonCall('POST', path, { body, headers: { 'X-RestLi-Method': 'BATCH_CREATE' } });
      } catch (err) {
        if (!(err instanceof PartnerError)) throw err;
        result.failure = await this.notReadyOr(segmentId, err);
        return result;
      }
      for (const [index, code] of elementErrors(payload, stop - start)) result.rejected.set(start + index, code);
      result.sent = stop;
    }
    return result;
  }

  /** LinkedIn answers 404 on /users both for an unknown segment and for one still
   * provisioning: reading the segment tells which. */
  async notReadyOr(segmentId, err) {
    if (err.status !== 404) return err;
    try {
      await this.getSegment(segmentId);
    } catch (missing) {
      if (missing instanceof PartnerError) return missing;
      throw missing;
    }
    return new PartnerError(
      404,
      'SEGMENT_NOT_READY',
      `DMP segment ${segmentId} does not take users yet (LinkedIn's 404 on /users while it provisions)`,
    );
  }

  // ---------------------------------------------------------------- transport

  /** LinkedIn's error code (`code` of its error body), which says when a 401 is a token to refresh. */
  errorCode(response) {
    const code = errorBody(response.json).code;
    return typeof code === 'string' ? code : null;
  }

  /** `<base path><path>`: `/rest/dmpSegments/...`. */
  apiUrl(path) {
    return `${this.endpoint}${this.basePath}${path}`;
  }

  /** Every /rest call says which API version and Rest.li protocol it speaks. */
  apiHeaders(token) {
    return {
      ...super.apiHeaders(token),
      'LinkedIn-Version': this.apiVersion,
      'X-Restli-Protocol-Version': PROTOCOL_VERSION,
    };
  }

  /** LinkedIn's {"status", "serviceErrorCode", "code", "message"}; 5xx -> PartnerUnavailable. */
  apiError(response) {
    const status = response.status;
    const error = errorBody(response.json);
    const code = String(error.code || `HTTP_${status}`);
    const message = this.scrub(String(error.message || response.statusText || 'error'));
    if (status >= 500) return new PartnerUnavailable(status, code, message);
    return new PartnerError(status, code, message);
  }

}

/** The last path segment of a Location header (`/rest/dmpSegments/<id>`), or null. */
function locationId(location) {
  if (!location) return null;
  const tail = location.replace(/\/+$/, '').split('/').pop();
  return tail || null;
}

/** [index, code] of the elements not taken: a status other than 2xx, or none at all for
 * that position (LinkedIn did not say: counted as not taken). */
function* elementErrors(payload, count) {
  const elements = payload && typeof payload === 'object' && Array.isArray(payload.elements) ? payload.elements : [];
  for (let index = 0; index < count; index += 1) {
    const element = elements[index];
    const status = element && typeof element === 'object' ? element.status : undefined;
    if (Number.isInteger(status) && status >= 200 && status < 300) continue;
    yield [index, Number.isInteger(status) ? `ELEMENT_${status}` : 'NO_ELEMENT_STATUS'];
  }
}

function errorBody(payload) {
  return payload && typeof payload === 'object' && !Array.isArray(payload) ? payload : {};
}

module.exports = {
  ACCOUNT_URN,
  DEFAULT_BASE_PATH,
  DEFAULT_VERSION,
  MAX_ELEMENTS_PER_REQUEST,
  MAX_IDENTIFIERS_PER_OPERATION,
  LinkedInClient,
};
