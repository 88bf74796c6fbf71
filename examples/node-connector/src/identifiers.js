'use strict';
// Which identifiers the partner may receive (docs/writing-a-connector.md, the feed conventions):
// USER_EMAIL.hash -> EMAIL_SHA256, USER_DEVICE_POINT technical identifiers of type
// MOBILE_ADVERTISING_ID -> MAID, USER_ACCOUNT.user_account_id -> PARTNER_USER_ID.
// Nothing with '@' and no malformed SHA-256 is ever sent.

const { MAX_IDENTIFIERS_PER_OPERATION } = require('./partner-client');

const SHA256 = /^[0-9a-f]{64}$/;
const SHA256_TYPES = new Set(['EMAIL_SHA256', 'PHONE_SHA256']);

/**
 * The identifier kinds a feed's `selected_identifying_resources` allow. A null filter set
 * means any registry / compartment.
 */
function selectionFrom(resources) {
  let email = false;
  let maid = false;
  let account = false;
  let registries = new Set();
  let compartments = new Set();
  for (const resource of Array.isArray(resources) ? resources : []) {
    const type = resource && resource.type;
    if (type === 'USER_EMAIL') {
      email = true;
    } else if (type === 'USER_ACCOUNT') {
      account = true;
      if (resource.compartment_id === undefined || resource.compartment_id === null) compartments = null;
      else if (compartments) compartments.add(String(resource.compartment_id));
    } else if (type === 'USER_DEVICE_TECHNICAL_ID') {
      if (resource.registry_type === 'MOBILE_ADVERTISING_ID') {
        maid = true;
        if (resource.registry_id === undefined || resource.registry_id === null) registries = null;
        else if (registries) registries.add(String(resource.registry_id));
      }
    } else if (type === 'USER_DEVICE_POINT') {
      maid = true;
      registries = null;
    }
  }
  return {
    email,
    maid,
    maidRegistries: registries,
    account,
    accountCompartments: compartments,
    get empty() {
      return !(this.email || this.maid || this.account);
    },
  };
}

/** The advertising id in `mob:<platform>:<kind>:<id>`; a bare id is kept as it is. */
function maidValue(userAgentId) {
  if (typeof userAgentId !== 'string') return null;
  if (!userAgentId.startsWith('mob:')) return userAgentId || null;
  const parts = userAgentId.split(':');
  if (parts.length < 4) return null;
  const value = parts.slice(3).join(':');
  return value || null;
}

/** The generic partner's types: the email hash, the advertising id, the user account id. */
const GENERIC_TYPES = {
  email: 'EMAIL_SHA256',
  /** [type, value] of a MOBILE_ADVERTISING_ID's user_agent_id, or null: not sent. */
  maid: (userAgentId) => {
    const value = maidValue(userAgentId);
    return value === null ? null : ['MAID', value];
  },
  account: 'PARTNER_USER_ID',
};

/**
 * The partner identifiers of one user, deduplicated, in the request's order:
 * [{type, value, source}] where `source` is the value the platform sent (for `stats`).
 * `types` names the partner's type of each kind (GENERIC_TYPES by default; a null `account`
 * means the partner takes no user account id).
 */
function mapIdentifiers(identifiers, selection, types = GENERIC_TYPES) {
  const found = new Map();
  const add = (type, value, source) => {
    const key = `${type}\u0000${value}`;
    if (value && !value.includes('@') && !found.has(key)) found.set(key, { type, value, source });
  };
  for (const identifier of Array.isArray(identifiers) ? identifiers : []) {
    if (!identifier || typeof identifier !== 'object') continue;
    if (identifier.type === 'USER_EMAIL') {
      if (selection.email && typeof identifier.hash === 'string') {
        const value = identifier.hash.trim().toLowerCase();
        if (SHA256.test(value)) add(types.email, value, identifier.hash);
      }
    } else if (identifier.type === 'USER_DEVICE_POINT') {
      if (!selection.maid) continue;
      const technical = Array.isArray(identifier.technical_identifiers) ? identifier.technical_identifiers : [];
      for (const tech of technical) {
        if (!tech || tech.type !== 'MOBILE_ADVERTISING_ID') continue;
        const registries = selection.maidRegistries;
        if (registries && !registries.has(String(tech.registry_id))) continue;
        const mapped = types.maid(tech.user_agent_id);
        if (mapped !== null) add(mapped[0], mapped[1], tech.user_agent_id);
      }
    } else if (identifier.type === 'USER_ACCOUNT' && selection.account && types.account) {
      const compartments = selection.accountCompartments;
      if (compartments && !compartments.has(String(identifier.compartment_id))) continue;
      if (typeof identifier.user_account_id === 'string') {
        add(types.account, identifier.user_account_id, identifier.user_account_id);
      }
    }
  }
  return [...found.values()];
}

/** One partner operation per (at most 10) identifiers of the user. */
function operationsFor(operation, mapped) {
  const action = operation === 'UPSERT' ? 'ADD' : 'REMOVE';
  const operations = [];
  for (let i = 0; i < mapped.length; i += MAX_IDENTIFIERS_PER_OPERATION) {
    operations.push({
      action,
      identifiers: mapped.slice(i, i + MAX_IDENTIFIERS_PER_OPERATION).map((m) => ({ type: m.type, value: m.value })),
    });
  }
  return operations;
}

/** A batch item as the operation it carries: objects as they are, JSON strings parsed. */
function decodeContent(item) {
  if (typeof item === 'string') {
    try {
      return JSON.parse(item);
    } catch (_) {
      return null;
    }
  }
  return item;
}

/** Why an operation must not be sent (bad shape, raw PII, non-hex hash), or null. */
function invalidOperationReason(operation) {
  if (!operation || typeof operation !== 'object' || Array.isArray(operation)) return 'NOT_AN_OBJECT';
  if (operation.action !== 'ADD' && operation.action !== 'REMOVE') return 'UNSUPPORTED_ACTION';
  const identifiers = operation.identifiers;
  if (!Array.isArray(identifiers) || identifiers.length < 1 || identifiers.length > MAX_IDENTIFIERS_PER_OPERATION) {
    return 'INVALID_IDENTIFIER_COUNT';
  }
  for (const item of identifiers) {
    if (!item || typeof item !== 'object' || Array.isArray(item)) return 'NOT_AN_OBJECT';
    const { type, value } = item;
    if (typeof type !== 'string' || typeof value !== 'string' || !value) return 'INVALID_IDENTIFIER';
    if (value.includes('@')) return 'PII_NOT_HASHED';
    if (SHA256_TYPES.has(type) && !SHA256.test(value)) return 'INVALID_SHA256_FORMAT';
  }
  return null;
}

module.exports = {
  GENERIC_TYPES,
  SHA256,
  decodeContent,
  invalidOperationReason,
  mapIdentifiers,
  maidValue,
  operationsFor,
  selectionFrom,
};
