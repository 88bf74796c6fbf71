'use strict';
// Which identifiers LinkedIn may receive, as BATCH_CREATE `userIds` ({idType, idValue}):
// USER_EMAIL.hash (64 lowercase hex) -> SHA256_EMAIL; a MOBILE_ADVERTISING_ID technical
// identifier `mob:<os>:<kind>:<id>` -> APPLE_IDFA (ios) or GOOGLE_AID (android, and), any
// other OS is not sent; USER_ACCOUNT has no LinkedIn idType and is never sent.
// Nothing with '@' and no malformed SHA-256 is ever sent.

const { SHA256, mapIdentifiers } = require('./identifiers');
const { MAX_IDENTIFIERS_PER_OPERATION } = require('./linkedin-client');

const ID_TYPES = new Set(['SHA256_EMAIL', 'GOOGLE_AID', 'APPLE_IDFA']);
const OS_TYPES = { ios: 'APPLE_IDFA', android: 'GOOGLE_AID', and: 'GOOGLE_AID' };

/** [idType, idValue] of `mob:<os>:<kind>:<id>`, or null when the OS is neither iOS nor
 * Android (LinkedIn could not match it) or the value is not of that form. */
function maidType(userAgentId) {
  if (typeof userAgentId !== 'string' || !userAgentId.startsWith('mob:')) return null;
  const parts = userAgentId.split(':');
  if (parts.length < 4) return null;
  const value = parts.slice(3).join(':');
  const kind = OS_TYPES[parts[1].toLowerCase()];
  return kind && value ? [kind, value] : null;
}

/** LinkedIn's idTypes: SHA256_EMAIL, the advertising id's by OS, no user account type. */
const LINKEDIN_TYPES = { email: 'SHA256_EMAIL', maid: maidType, account: null };

/**
 * The LinkedIn user ids of one user, deduplicated, in the request's order:
 * [{type, value, source}] where `source` is the value the platform sent (for `stats`).
 */
function mapLinkedInIdentifiers(identifiers, selection) {
  return mapIdentifiers(identifiers, selection, LINKEDIN_TYPES);
}

/** One BATCH_CREATE element per (at most 10) user ids of the user. */
function elementsFor(operation, mapped) {
  const action = operation === 'UPSERT' ? 'ADD' : 'REMOVE';
  const elements = [];
  for (let i = 0; i < mapped.length; i += MAX_IDENTIFIERS_PER_OPERATION) {
    elements.push({
      action,
      userIds: mapped.slice(i, i + MAX_IDENTIFIERS_PER_OPERATION).map((m) => ({ idType: m.type, idValue: m.value })),
    });
  }
  return elements;
}

function hasExactly(object, keys) {
  const own = Object.keys(object);
  return own.length === keys.length && keys.every((key) => Object.prototype.hasOwnProperty.call(object, key));
}

/** Why a batch item must not be sent as a LinkedIn element (bad shape, raw PII, non-hex
 * hash, an idType this connector does not send), or null. */
function invalidElementReason(element) {
  if (!element || typeof element !== 'object' || Array.isArray(element)) return 'NOT_AN_OBJECT';
  if (element.action !== 'ADD' && element.action !== 'REMOVE') return 'UNSUPPORTED_ACTION';
  const users = element.userIds;
  if (!Array.isArray(users) || users.length < 1 || users.length > MAX_IDENTIFIERS_PER_OPERATION) {
    return 'INVALID_IDENTIFIER_COUNT';
  }
  if (!hasExactly(element, ['action', 'userIds'])) return 'UNKNOWN_FIELD';
  for (const user of users) {
    if (!user || typeof user !== 'object' || Array.isArray(user) || !hasExactly(user, ['idType', 'idValue'])) {
      return 'NOT_A_USER_ID';
    }
    const { idType, idValue } = user;
    if (typeof idType !== 'string' || typeof idValue !== 'string' || !idValue) return 'INVALID_IDENTIFIER';
    if (idValue.includes('@')) return 'PII_NOT_HASHED';
    if (!ID_TYPES.has(idType)) return 'UNSUPPORTED_IDENTIFIER_TYPE';
    if (idType === 'SHA256_EMAIL' && !SHA256.test(idValue)) return 'INVALID_SHA256_FORMAT';
  }
  return null;
}

module.exports = {
  ID_TYPES,
  elementsFor,
  invalidElementReason,
  mapLinkedInIdentifiers,
  maidType,
};
