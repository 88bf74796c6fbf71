'use strict';
// The LinkedIn variant of the example connector: the same batched audience feed on the
// published SDK (@mediarithmics/plugins-nodejs-sdk 0.28.2), feeding LinkedIn's Marketing API
// DMP segments (Matched Audiences) instead of the partner Audience API v1. Only the partner
// side differs from index.js: the client (src/linkedin-client.js) and LinkedIn's identifier
// types (src/linkedin-identifiers.js).
//
//   PLUGIN_PORT, GATEWAY_HOST, GATEWAY_PORT, PLUGIN_WORKER_ID, PLUGIN_AUTHENTICATION_TOKEN
//   node linkedin.js
//
// Configured by technical_config alone: partner_endpoint (scheme, host, port),
// partner_api_version (the LinkedIn-Version, default 202601), partner_base_path (default
// /rest), max_operations_per_request (at most LinkedIn's 5,000), max_body_bytes_per_request,
// and dialect (absent or "linkedin"). The feed's partner_account_id is the sponsored
// account's id (urn:li:sponsoredAccount:<id>).

const { ConfigError, PartnerAudienceFeed, main } = require('./index');
const {
  ACCOUNT_URN,
  DEFAULT_BASE_PATH,
  DEFAULT_VERSION,
  LinkedInClient,
  MAX_ELEMENTS_PER_REQUEST,
} = require('./src/linkedin-client');
const { elementsFor, invalidElementReason, mapLinkedInIdentifiers } = require('./src/linkedin-identifiers');

const TECHNICAL_CONFIG_HINT =
  '{"partner_endpoint": "https://api.linkedin.com", "partner_api_version": "202601", "partner_base_path": "/rest", "max_operations_per_request": 5000}';

/** matchedCount / inputCount rounded half-up to 4 decimals, exactly (integers only). */
function ratio4(matched, given) {
  const negative = matched < 0 !== given < 0;
  const num = BigInt(Math.abs(matched)) * 20000n + BigInt(Math.abs(given));
  const quotient = num / (2n * BigInt(Math.abs(given)));
  const rate = Number(quotient) / 10000;
  return negative && rate !== 0 ? -rate : rate;
}

class LinkedInAudienceFeed extends PartnerAudienceFeed {
  // ---------------------------------------------------------------- configuration

  fileHint(name) {
    return name === 'technical_config' ? TECHNICAL_CONFIG_HINT : super.fileHint(name);
  }

  technicalDefaults() {
    return { partnerApiVersion: DEFAULT_VERSION, maxOperationsPerRequest: MAX_ELEMENTS_PER_REQUEST };
  }

  /** partner_base_path (default /rest) and dialect: another partner's is refused. */
  extraTechnicalConfig(file, invalid) {
    const basePath = file.partner_base_path === undefined ? DEFAULT_BASE_PATH : file.partner_base_path;
    if (typeof basePath !== 'string' || (basePath && !basePath.startsWith('/'))) {
      throw invalid('partner_base_path', 'must be a path such as "/rest"');
    }
    const dialect = file.dialect === undefined ? null : file.dialect;
    if (dialect !== null && dialect !== 'linkedin') {
      throw new ConfigError(
        `configuration file 'technical_config' says dialect ${JSON.stringify(dialect)}: this connector speaks ` +
          "LinkedIn's API; point it at a LinkedIn endpoint (dialect 'linkedin')",
      );
    }
    return { partnerBasePath: basePath || DEFAULT_BASE_PATH };
  }

  partnerClient(config, credentials) {
    return new LinkedInClient({
      endpoint: config.partnerEndpoint,
      oauth: { clientId: credentials.clientId, clientSecret: credentials.clientSecret },
      session: this.tokenSession(config, credentials),
      apiVersion: config.partnerApiVersion,
      basePath: config.partnerBasePath,
      maxOperations: config.maxOperationsPerRequest,
      maxBodyBytes: config.maxBodyBytesPerRequest,
    });
  }

  /** LinkedIn takes no user account id: the feed must select an email or a device. */
  selectionProblem(feedId, selection) {
    if (selection.email || selection.maid) return null;
    return (
      `feed ${feedId}: selected_identifying_resources selects nothing LinkedIn takes: select USER_EMAIL ` +
      '(sent as SHA256_EMAIL) or USER_DEVICE_POINT (APPLE_IDFA / GOOGLE_AID); LinkedIn has no type for user account ids'
    );
  }

  // ---------------------------------------------------------------- LinkedIn shapes

  eligibleIdentifiers(request, ctx) {
    return mapLinkedInIdentifiers(request.user_identifiers, ctx.selection);
  }

  operationsFor(operation, mapped) {
    return elementsFor(operation, mapped);
  }

  invalidOperationReason(element) {
    return invalidElementReason(element);
  }

  /** The sponsored account id of the segment's `account` URN. */
  segmentAccount(segment) {
    const urn = segment.account;
    return typeof urn === 'string' && urn.startsWith(ACCOUNT_URN) ? urn.slice(ACCOUNT_URN.length) : null;
  }

  /** LinkedIn shows counts, not a rate: matchedCount / inputCount once processed (0 of 0 is
   * 0), rounded half-up to 4 decimals; null before processing. */
  matchRate(segment) {
    const matched = segment.matchedCount;
    const given = segment.inputCount;
    if (!Number.isInteger(matched) || !Number.isInteger(given) || given < 0) return null;
    if (given === 0) return 0;
    return ratio4(matched, given);
  }
}

module.exports = { LinkedInAudienceFeed, main: () => main(LinkedInAudienceFeed), ratio4 };

if (require.main === module) main(LinkedInAudienceFeed);
