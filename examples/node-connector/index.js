'use strict';
// A batched audience-feed connector on the published mediarithmics Node SDK
// (@mediarithmics/plugins-nodejs-sdk 0.28.2), feeding the partner Audience API v1 the way
// feed-harness's Python reference connector (harness/reference/) does.
//
//   PLUGIN_PORT, GATEWAY_HOST, GATEWAY_PORT, PLUGIN_WORKER_ID, PLUGIN_AUTHENTICATION_TOKEN
//   node index.js
//
// 0.28.2 serves creation, connection, user_segment_update, batch_update and troubleshoot;
// the authentication routes (SDK 0.30+) do not exist there and answer 404.

const { core } = require('@mediarithmics/plugins-nodejs-sdk');

const {
  MAX_BODY_BYTES,
  MAX_OPERATIONS_PER_REQUEST,
  PartnerClient,
  PartnerError,
  PartnerUnavailable,
  ReauthenticationNeeded,
  TokenSession,
} = require('./src/partner-client');
const {
  decodeContent,
  invalidOperationReason,
  mapIdentifiers,
  operationsFor,
  selectionFrom,
} = require('./src/identifiers');

const PARTNER_ACCOUNT_ID = 'partner_account_id';
const SEGMENT_NAME = 'segment_name';
const PARTNER_SEGMENT_ID = 'partner_segment_id';
const TECHNICAL_CONFIG_FILE = 'technical_config';
const CREDENTIALS_FILE = 'credentials';

/** Delay asked for after a 429 without Retry-After (LinkedIn sends none). */
const DEFAULT_RETRY_DELAY_MS = 60000;
/** Delay asked for while the partner segment is still provisioning. */
const NOT_READY_DELAY_MS = 30000;

const FILE_HINTS = {
  [TECHNICAL_CONFIG_FILE]:
    '{"partner_endpoint": "https://partner.test", "partner_api_version": "v1", "max_operations_per_request": 10000, "max_body_bytes_per_request": 5242880}',
  [CREDENTIALS_FILE]: '{"client_id": "...", "client_secret": "...", "refresh_token": "..."}',
};

/** The feed or a configuration file is unusable; the message names it and the fix.
 * `visibility` PUBLIC: the SDK shows a creation error's message to the platform's user. */
class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ConfigError';
    this.visibility = 'PUBLIC';
  }
}

function stringProperty(properties, name) {
  const prop = properties.findStringProperty(name);
  const value = prop && prop.value ? prop.value.value : undefined;
  return typeof value === 'string' && value.trim() ? value.trim() : null;
}

function retryDelayMs(error) {
  if (error.retryAfter === null || error.retryAfter === undefined) return DEFAULT_RETRY_DELAY_MS;
  return Math.round(Math.max(error.retryAfter, 1) * 1000);
}

function withRefusals(lead, refused) {
  const total = [...refused.values()].reduce((a, b) => a + b, 0);
  if (!total) return lead;
  const counts = [...refused.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([code, count]) => `${code} x${count}`)
    .join(', ');
  const tail = `${total} items refused (${counts})`;
  return lead ? `${lead}; ${tail}` : tail;
}

function count(map, key) {
  map.set(key, (map.get(key) || 0) + 1);
}

/** The plugin's logger, for code the SDK calls without `this` (emptyBodyFilter). */
let pluginLogger = null;

class PartnerAudienceFeed extends core.BatchedAudienceFeedConnectorBasePlugin {
  constructor() {
    super();
    /** Token sessions per (endpoint, client id, refresh token), shared by every feed. */
    this.sessions = new Map();
    pluginLogger = this.logger;
  }

  /**
   * The SDK's answer to a missing or `{}` body: 500 {"error": "Missing request body"}.
   *
   * SDK 0.28.2 registers `this.emptyBodyFilter` on every feed route without binding it, and
   * its filter reads `this.logger`: Express calls it with `this` undefined, the TypeError
   * becomes Express's default HTML 500 (with a stack trace), never the JSON answer the SDK
   * means to send. This override is picked up by the same unbound registration and never
   * touches `this`, so the intended answer goes out.
   */
  emptyBodyFilter(req, res, next) {
    if (!req.body || (typeof req.body === 'object' && Object.keys(req.body).length === 0)) {
      if (pluginLogger) pluginLogger.error(`POST ${req.path}: Missing request body`);
      res.status(500).json({ error: 'Missing request body' });
      return;
    }
    next();
  }

  // ---------------------------------------------------------------- configuration

  /** What a configuration file should hold, for the messages that name it. */
  fileHint(name) {
    return FILE_HINTS[name] || 'a JSON object';
  }

  /** A configuration file from the gateway, parsed as a JSON object; ConfigError naming it. */
  async loadJsonFile(name) {
    const hint = this.fileHint(name);
    let raw;
    try {
      raw = await this.fetchConfigurationFile(name);
    } catch (err) {
      if (err instanceof core.ResourceNotFoundError) {
        throw new ConfigError(`configuration file '${name}' is missing on the gateway (404): upload it as ${hint}`);
      }
      // the SDK's gateway errors quote the request (with the auth user): keep only the gist
      throw new ConfigError(`configuration file '${name}' is unreadable: the gateway call failed (${err.name})`);
    }
    let payload;
    try {
      payload = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw));
    } catch (_) {
      throw new ConfigError(`configuration file '${name}' is not valid JSON: upload it as ${hint}`);
    }
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new ConfigError(`configuration file '${name}' is not a JSON object: upload it as ${hint}`);
    }
    return payload;
  }

  /** The defaults of `partner_api_version` and `max_operations_per_request` (also its maximum). */
  technicalDefaults() {
    return { partnerApiVersion: 'v1', maxOperationsPerRequest: MAX_OPERATIONS_PER_REQUEST };
  }

  /** More keys of `technical_config` a partner variant reads (`invalid(field, why)` makes the
   * ConfigError); merged into the config. */
  extraTechnicalConfig(_file, _invalid) {
    return {};
  }

  async technicalConfig() {
    const file = await this.loadJsonFile(TECHNICAL_CONFIG_FILE);
    const invalid = (field, why) =>
      new ConfigError(
        `configuration file '${TECHNICAL_CONFIG_FILE}' is invalid: field '${field}': ${why}; expected ${this.fileHint(TECHNICAL_CONFIG_FILE)}`,
      );
    const defaults = this.technicalDefaults();
    const endpoint = file.partner_endpoint;
    if (typeof endpoint !== 'string' || !/^https?:\/\//.test(endpoint)) {
      throw invalid('partner_endpoint', 'must be an http(s) base URL such as https://partner.test');
    }
    const version = file.partner_api_version === undefined ? defaults.partnerApiVersion : file.partner_api_version;
    if (typeof version !== 'string') {
      throw invalid('partner_api_version', `must be a string such as "${defaults.partnerApiVersion}"`);
    }
    const maxOpsLimit = defaults.maxOperationsPerRequest;
    const maxOps = file.max_operations_per_request === undefined ? maxOpsLimit : file.max_operations_per_request;
    if (!Number.isInteger(maxOps) || maxOps < 1 || maxOps > maxOpsLimit) {
      throw invalid('max_operations_per_request', `must be an integer from 1 to ${maxOpsLimit}`);
    }
    const maxBytes = file.max_body_bytes_per_request === undefined ? MAX_BODY_BYTES : file.max_body_bytes_per_request;
    if (!Number.isInteger(maxBytes) || maxBytes < 1) {
      throw invalid('max_body_bytes_per_request', 'must be a positive integer (bytes)');
    }
    return {
      partnerEndpoint: endpoint.replace(/\/+$/, ''),
      partnerApiVersion: version,
      maxOperationsPerRequest: maxOps,
      maxBodyBytesPerRequest: maxBytes,
      ...this.extraTechnicalConfig(file, invalid),
    };
  }

  async partnerCredentials() {
    const file = await this.loadJsonFile(CREDENTIALS_FILE);
    for (const field of ['client_id', 'client_secret']) {
      if (typeof file[field] !== 'string' || !file[field]) {
        throw new ConfigError(
          `configuration file '${CREDENTIALS_FILE}' is invalid: field '${field}' is missing or empty; expected ${this.fileHint(CREDENTIALS_FILE)}`,
        );
      }
    }
    if (typeof file.refresh_token !== 'string' || !file.refresh_token) {
      throw new ConfigError(
        `configuration file '${CREDENTIALS_FILE}' has no refresh_token: add the partner refresh token granted to the client for the feed's account`,
      );
    }
    return { clientId: file.client_id, clientSecret: file.client_secret, refreshToken: file.refresh_token };
  }

  /** The token session of (endpoint, client id, refresh token), shared by every feed. */
  tokenSession(config, credentials) {
    const key = `${config.partnerEndpoint}\u0000${credentials.clientId}\u0000${credentials.refreshToken}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = new TokenSession(credentials.refreshToken);
      this.sessions.set(key, session);
    }
    return session;
  }

  /** The partner client of a feed: its calls throw PartnerError and its subclasses. */
  partnerClient(config, credentials) {
    const session = this.tokenSession(config, credentials);
    return new PartnerClient({
      endpoint: config.partnerEndpoint,
      oauth: { clientId: credentials.clientId, clientSecret: credentials.clientSecret },
      session,
      apiVersion: config.partnerApiVersion,
      maxOperations: config.maxOperationsPerRequest,
      maxBodyBytes: config.maxBodyBytesPerRequest,
    });
  }

  // ---------------------------------------------------------------- instance context

  /** Validate the feed (properties, identifying resources, files) and build its client.
   * A throw here is the SDK's: creation answers 500 {status: error, message, visibility}. */
  async instanceContextBuilder(feedId) {
    const base = await super.instanceContextBuilder(feedId);
    const segment = await this.fetchAudienceSegment(feedId);
    const props = base.feedProperties;
    const account = stringProperty(props, PARTNER_ACCOUNT_ID);
    if (!account) {
      throw new ConfigError(
        `feed ${feedId}: the feed property '${PARTNER_ACCOUNT_ID}' is missing or empty: set it (STRING) to the partner account that holds the segment, e.g. 'acc-1'`,
      );
    }
    const selection = selectionFrom(base.feed.selected_identifying_resources);
    const problem = this.selectionProblem(feedId, selection);
    if (problem) throw new ConfigError(problem);
    const config = await this.technicalConfig();
    const credentials = await this.partnerCredentials();
    return {
      ...base,
      segment,
      partnerAccountId: account,
      segmentName: stringProperty(props, SEGMENT_NAME) || segment.name,
      partnerSegmentId: stringProperty(props, PARTNER_SEGMENT_ID),
      selection,
      partner: this.partnerClient(config, credentials),
      groupingKey: `${segment.id}_${base.feed.id}`,
    };
  }

  /** Why the feed's selection gives the partner nothing (the creation error), or null. */
  selectionProblem(feedId, selection) {
    if (!selection.empty) return null;
    return (
      `feed ${feedId}: selected_identifying_resources selects no identifying resource this connector can send: ` +
      'select USER_EMAIL, USER_DEVICE_POINT (or USER_DEVICE_TECHNICAL_ID of MOBILE_ADVERTISING_ID) or USER_ACCOUNT'
    );
  }

  // ---------------------------------------------------------------- partner shapes

  /** The user's identifiers the feed selects and the partner takes: [{type, value, source}]. */
  eligibleIdentifiers(request, ctx) {
    return mapIdentifiers(request.user_identifiers, ctx.selection);
  }

  /** The partner operations of one user's update (the batch items' content). */
  operationsFor(operation, mapped) {
    return operationsFor(operation, mapped);
  }

  /** Why a batch item must not be sent to the partner, or null. */
  invalidOperationReason(operation) {
    return invalidOperationReason(operation);
  }

  /** The partner account that holds `segment` as the partner shows it (null: not shown). */
  segmentAccount(segment) {
    return segment.account_id === undefined ? null : segment.account_id;
  }

  /** The segment's match rate as the partner shows it (null before processing). */
  matchRate(segment) {
    return segment.match_rate === undefined ? null : segment.match_rate;
  }

  // ---------------------------------------------------------------- creation, connection

  /** Verify the configured partner segment, or create one and write its id back. */
  async onExternalSegmentCreation(request, ctx) {
    const partner = ctx.partner;
    if (ctx.partnerSegmentId) {
      const segmentId = ctx.partnerSegmentId;
      let segment;
      try {
        segment = await partner.getSegment(segmentId);
      } catch (err) {
        if (!(err instanceof PartnerError)) throw err;
        if (err.code === 'SEGMENT_NOT_READY') {
          return { status: 'ok', message: `partner segment ${segmentId} is provisioning` };
        }
        return creationError(
          `the configured ${PARTNER_SEGMENT_ID} ${segmentId} cannot be used: ${err.message}; fix the property or clear it to create a new segment`,
          err,
        );
      }
      const owner = this.segmentAccount(segment);
      if (owner !== null && owner !== ctx.partnerAccountId) {
        return {
          status: 'error',
          message: `${PARTNER_SEGMENT_ID} ${segmentId} belongs to partner account ${owner}, not to ${ctx.partnerAccountId}: fix one of the two properties`,
        };
      }
      return { status: 'ok', message: `partner segment ${segmentId} exists` };
    }
    let created;
    try {
      created = await partner.createSegment(
        ctx.partnerAccountId,
        ctx.segmentName,
        `mediarithmics segment ${ctx.segment.id} (feed ${ctx.feed.id})`,
      );
    } catch (err) {
      if (!(err instanceof PartnerError)) throw err;
      return creationError(
        `could not create partner segment '${ctx.segmentName}' in account ${ctx.partnerAccountId}: ${err.message}`,
        err,
      );
    }
    try {
      await this.writePartnerSegmentId(ctx, created.id);
    } catch (err) {
      return {
        status: 'error',
        message: `partner segment ${created.id} exists but writing ${PARTNER_SEGMENT_ID} back through the gateway failed (${err.name}): try again`,
      };
    }
    const verb = created.created ? 'created' : 'reused existing';
    return { status: 'ok', message: `${verb} partner segment ${created.id}` };
  }

  /** Write partner_segment_id back through the gateway (POST if absent, else PUT); the
   * cached instance context learns it too (the SDK keeps it for ~10 minutes). */
  async writePartnerSegmentId(ctx, segmentId) {
    const property = {
      technical_name: PARTNER_SEGMENT_ID,
      value: { value: segmentId },
      property_type: 'STRING',
      origin: 'INSTANCE',
      writable: true,
      deletable: false,
    };
    if (ctx.feedProperties.get(PARTNER_SEGMENT_ID)) {
      await this.updateAudienceFeedProperties(ctx.feed.id, property);
    } else {
      await this.createAudienceFeedProperties(ctx.feed.id, property);
    }
    ctx.partnerSegmentId = segmentId;
  }

  /** ok once the partner segment answers; not ready while it provisions. */
  async onExternalSegmentConnection(request, ctx) {
    const segmentId = ctx.partnerSegmentId;
    if (!segmentId) {
      return { status: 'error', message: `feed ${ctx.feed.id} has no ${PARTNER_SEGMENT_ID}: run creation first` };
    }
    try {
      await ctx.partner.getSegment(segmentId);
    } catch (err) {
      if (!(err instanceof PartnerError)) throw err;
      if (err.code === 'SEGMENT_NOT_READY' || err instanceof PartnerUnavailable) {
        return {
          status: 'external_segment_not_ready_yet',
          message: `partner segment ${segmentId} is not ready yet (${err.code})`,
        };
      }
      if (err.status === 429) {
        return { status: 'external_segment_not_ready_yet', message: 'the partner is rate limiting: poll again later' };
      }
      return { status: 'error', message: `partner segment ${segmentId}: ${err.message}` };
    }
    return { status: 'ok', message: `partner segment ${segmentId} is ready` };
  }

  // ---------------------------------------------------------------- updates

  /** One BATCH_DELIVERY item per user (per 10 identifiers), one stat per identifier. */
  async onUserSegmentUpdate(request, ctx) {
    const mapped = this.eligibleIdentifiers(request, ctx);
    if (!mapped.length) {
      return {
        status: 'no_eligible_identifier',
        message: 'the user has no identifier the feed selects and the partner takes',
      };
    }
    return {
      status: 'ok',
      data: this.operationsFor(request.operation, mapped).map((operation) => ({
        type: 'BATCH_DELIVERY',
        content: operation,
        grouping_key: ctx.groupingKey,
      })),
      stats: mapped.map((m) => ({ identifier: m.source, sync_result: 'PROCESSED' })),
    };
  }

  /** Upload the batch; RETRY on 429 / 5xx / not ready, ERROR when it cannot work. */
  async onBatchUpdate(request, ctx) {
    const content = Array.isArray(request.batch_content) ? request.batch_content : [];
    const total = content.length;
    if (total === 0) return { status: 'OK', sent_items_in_success: 0, sent_items_in_error: 0 };
    const segmentId = ctx.partnerSegmentId;
    if (!segmentId) {
      return {
        status: 'ERROR',
        sent_items_in_success: 0,
        sent_items_in_error: total,
        message: `feed ${ctx.feed.id} has no ${PARTNER_SEGMENT_ID}: run creation first`,
      };
    }
    const operations = [];
    const refused = new Map();
    for (const item of content) {
      const operation = decodeContent(item);
      const reason = this.invalidOperationReason(operation);
      if (reason === null) operations.push(operation);
      else count(refused, reason);
    }
    const result = await ctx.partner.uploadMembers(segmentId, operations);
    const failure = result.failure;
    if (
      failure &&
      (failure.status === 429 || failure instanceof PartnerUnavailable || failure.code === 'SEGMENT_NOT_READY')
    ) {
      let delay = failure.code === 'SEGMENT_NOT_READY' ? NOT_READY_DELAY_MS : undefined;
      if (failure.status === 429) delay = retryDelayMs(failure);
      const answer = {
        status: 'RETRY',
        sent_items_in_success: 0,
        sent_items_in_error: total,
        message: `the partner could not take the batch now (${failure.code}): retry`,
      };
      if (delay) answer.next_msg_delay_in_ms = delay;
      return answer;
    }
    const success = result.sent - result.rejected.size;
    for (const code of result.rejected.values()) count(refused, code);
    if (failure) {
      const lead =
        failure instanceof ReauthenticationNeeded
          ? `re-authentication is needed: the partner refused the refresh token (${failure.message})`
          : `the partner refused the upload: ${failure.message}`;
      return {
        status: 'ERROR',
        sent_items_in_success: success,
        sent_items_in_error: total - success,
        message: withRefusals(lead, refused),
      };
    }
    const answer = { status: 'OK', sent_items_in_success: success, sent_items_in_error: total - success };
    const message = withRefusals('', refused);
    if (message) answer.message = message;
    return answer;
  }

  // ---------------------------------------------------------------- troubleshoot

  /** FETCH_DESTINATION_AUDIENCE (the only action 0.28.2 lets through): the partner segment
   * as returned and its match rate. */
  async onTroubleshoot(request, ctx) {
    if (request.action !== 'FETCH_DESTINATION_AUDIENCE') {
      return { status: 'not_implemented', message: `action ${request.action} is not supported` };
    }
    const segmentId = ctx.partnerSegmentId;
    if (!segmentId) {
      return { status: 'error', message: `feed ${ctx.feed.id} has no ${PARTNER_SEGMENT_ID}: run creation first` };
    }
    let segment;
    try {
      segment = await ctx.partner.getSegment(segmentId);
    } catch (err) {
      if (!(err instanceof PartnerError)) throw err;
      return { status: 'error', message: `partner segment ${segmentId}: ${err.message}` };
    }
    const matchRate = this.matchRate(segment);
    return {
      status: 'ok',
      message: `partner segment ${segmentId} (${segment.status})`,
      data: { destination_audience: segment, match_rate: matchRate },
    };
  }
}

function creationError(message, err) {
  const hint = err instanceof PartnerUnavailable ? ' (transient: try again)' : '';
  return { status: 'error', message: message + hint };
}

/** Serve the plugin (default: this generic one) on $PLUGIN_PORT (default 8080). */
function main(Plugin = PartnerAudienceFeed) {
  // the SDK's GET /v1/metadata reads ./node_modules/@mediarithmics/plugins-nodejs-sdk/package.json
  process.chdir(__dirname);
  const runner = new core.ProductionPluginRunner(new Plugin());
  runner.start();
  return runner;
}

module.exports = { ConfigError, PartnerAudienceFeed, main };

if (require.main === module) main();
