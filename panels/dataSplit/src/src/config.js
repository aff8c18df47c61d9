// Pure logic of the Data Split panel: defaults, normalisation of a stored config, edits,
// validation and the payload sent back to the platform. No DOM, no SDK: every function takes
// plain data and returns new plain data (inputs are never mutated).

/** Limits of the node (same as the original panel). */
export const MIN_GROUPS = 2;
export const MAX_GROUPS = 5;
export const MAX_DISTRIBUTION = 100;
export const MAX_SEED = 4294967295;
export const MAX_GROUP_NAME_LENGTH = 64;

export const DEFAULT_NODE_NAME = "Model Data Split";
const NODE_NAME_PATTERN = /^[a-zA-Z0-9_\- ]+$/;

/** Error texts; the first three are the original panel's, word for word. */
export const ERRORS = Object.freeze({
  distribution: { message: "Distribution must equal 100%", suggestion: "Please adjust the distribution" },
  nodeName: { message: "Node name error", suggestion: "Please adjust the node name" },
  groupName: { message: "Group name is required", suggestion: "Please adjust the group name" },
  duplicateName: { message: "Group names must be unique", suggestion: "Please rename the duplicate groups" },
  groupCount: {
    message: `The node needs ${MIN_GROUPS} to ${MAX_GROUPS} groups`,
    suggestion: "Please add or remove groups",
  },
  seed: {
    message: `Seed must be a whole number from 0 to ${MAX_SEED}`,
    suggestion: "Please adjust the seed or leave it empty",
  },
});

/**
 * A random v4 UUID (crypto.randomUUID where available, else getRandomValues).
 * @returns {string}
 */
export function newId() {
  if (globalThis.crypto && typeof globalThis.crypto.randomUUID === "function") {
    return globalThis.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Round to 2 decimals (the panel's precision), avoiding binary noise such as 33.330000000000005.
 * @param {number} value
 * @returns {number}
 */
export function round2(value) {
  return Math.round((Number(value) + Number.EPSILON) * 100) / 100;
}

/**
 * Parse a user-typed or stored distribution into a number in [0, 100] with 2 decimals.
 * Non-numeric input becomes 0.
 * @param {unknown} value
 * @returns {number}
 */
export function clampDistribution(value) {
  const number = typeof value === "string" ? Number.parseFloat(value.trim()) : Number(value);
  if (!Number.isFinite(number)) return 0;
  return round2(Math.min(Math.max(number, 0), MAX_DISTRIBUTION));
}

/**
 * Keep only the characters a group name may contain: [A-Za-z0-9_] (max 64 characters).
 * @param {unknown} value
 * @returns {string}
 */
export function sanitizeGroupName(value) {
  return String(value ?? "")
    .replace(/[^A-Za-z0-9_]/g, "")
    .slice(0, MAX_GROUP_NAME_LENGTH);
}

/**
 * Parse the seed field: "" / null -> {seed: null, ok: true}; a whole number in [0, MAX_SEED] ->
 * {seed: n, ok: true}; anything else -> {seed: null, ok: false}.
 * @param {unknown} value
 * @returns {{seed: number|null, ok: boolean}}
 */
export function parseSeed(value) {
  if (value === null || value === undefined) return { seed: null, ok: true };
  const text = String(value).trim();
  if (text === "") return { seed: null, ok: true };
  if (!/^[0-9]+$/.test(text)) return { seed: null, ok: false };
  const seed = Number(text);
  if (!Number.isSafeInteger(seed) || seed > MAX_SEED) return { seed: null, ok: false };
  return { seed, ok: true };
}

/**
 * The editable state of a fresh node: train 80 / validation 10 / test 10, tags on, no seed.
 * @returns {PanelState}
 */
export function defaultState() {
  return {
    name: DEFAULT_NODE_NAME,
    distributeEqually: false,
    groups: [
      { id: newId(), name: "train", distribution: 80 },
      { id: newId(), name: "validation", distribution: 10 },
      { id: newId(), name: "test", distribution: 10 },
    ],
    itemMetadata: true,
    seedText: "",
  };
}

/**
 * Build the editable state from a stored customNodeConfig (or defaults when there is none).
 * Stored values are normalised (names sanitised, distributions clamped); the stored object is
 * not modified.
 * @param {unknown} stored node.metadata.customNodeConfig as received from the platform
 * @returns {PanelState}
 */
export function stateFromConfig(stored) {
  if (!stored || typeof stored !== "object" || Array.isArray(stored)) return defaultState();
  const base = defaultState();
  const groups = Array.isArray(stored.groups)
    ? stored.groups
        .filter((g) => g && typeof g === "object")
        .map((g) => ({
          id: typeof g.id === "string" && g.id ? g.id : newId(),
          name: sanitizeGroupName(g.name),
          distribution: clampDistribution(g.distribution),
        }))
    : base.groups;
  const seed = stored.seed;
  return {
    name: typeof stored.name === "string" ? stored.name : base.name,
    distributeEqually: stored.distributeEqually === true,
    groups,
    itemMetadata: typeof stored.itemMetadata === "boolean" ? stored.itemMetadata : base.itemMetadata,
    seedText: seed === null || seed === undefined ? "" : String(seed),
  };
}

/**
 * Sum of the distributions, rounded to 2 decimals.
 * @param {Group[]} groups
 * @returns {number}
 */
export function distributionSum(groups) {
  return round2(groups.reduce((total, g) => total + Number(g.distribution || 0), 0));
}

/**
 * Equal shares of 100 with 2 decimals; the positive remainder goes to the last group
 * (3 groups -> 33.33, 33.33, 33.34).
 * @param {number} count
 * @returns {number[]}
 */
export function equalShares(count) {
  if (count <= 0) return [];
  const share = round2(MAX_DISTRIBUTION / count);
  const shares = Array.from({ length: count }, () => share);
  const remainder = round2(MAX_DISTRIBUTION - share * count);
  if (remainder > 0) shares[count - 1] = round2(shares[count - 1] + remainder);
  return shares;
}

/**
 * Apply "distribute equally" when it is on (returns a new state).
 * @param {PanelState} state
 * @returns {PanelState}
 */
export function applyEqualDistribution(state) {
  if (!state.distributeEqually) return state;
  const shares = equalShares(state.groups.length);
  return { ...state, groups: state.groups.map((g, i) => ({ ...g, distribution: shares[i] })) };
}

/**
 * A group name not used yet: "group_4", "group_5", ...
 * @param {Group[]} groups
 * @returns {string}
 */
export function nextGroupName(groups) {
  const used = new Set(groups.map((g) => g.name));
  for (let n = groups.length + 1; ; n += 1) {
    const name = `group_${n}`;
    if (!used.has(name)) return name;
  }
}

/**
 * Add a group (up to MAX_GROUPS). It takes the remaining distribution, or an equal share when
 * "distribute equally" is on.
 * @param {PanelState} state
 * @returns {PanelState}
 */
export function addGroup(state) {
  if (state.groups.length >= MAX_GROUPS) return state;
  const remaining = round2(MAX_DISTRIBUTION - distributionSum(state.groups));
  const group = { id: newId(), name: nextGroupName(state.groups), distribution: Math.max(remaining, 0) };
  return applyEqualDistribution({ ...state, groups: [...state.groups, group] });
}

/**
 * Remove a group by id (keeping at least MIN_GROUPS).
 * @param {PanelState} state
 * @param {string} id
 * @returns {PanelState}
 */
export function removeGroup(state, id) {
  if (state.groups.length <= MIN_GROUPS) return state;
  return applyEqualDistribution({ ...state, groups: state.groups.filter((g) => g.id !== id) });
}

/**
 * Replace one group's fields (returns a new state).
 * @param {PanelState} state
 * @param {string} id
 * @param {Partial<Group>} changes
 * @returns {PanelState}
 */
export function updateGroup(state, id, changes) {
  return { ...state, groups: state.groups.map((g) => (g.id === id ? { ...g, ...changes } : g)) };
}

/**
 * Per-field problems of a state, as data the view and the config both use.
 * @param {PanelState} state
 * @returns {{nodeName: boolean, emptyNames: Set<string>, duplicateNames: Set<string>,
 *   sum: number, sumOk: boolean, countOk: boolean, seedOk: boolean}}
 */
export function checkState(state) {
  const name = state.name.trim();
  const counts = new Map();
  for (const g of state.groups) counts.set(g.name, (counts.get(g.name) || 0) + 1);
  const sum = distributionSum(state.groups);
  return {
    nodeName: name.length === 0 || !NODE_NAME_PATTERN.test(name),
    emptyNames: new Set(state.groups.filter((g) => g.name === "").map((g) => g.id)),
    duplicateNames: new Set(state.groups.filter((g) => g.name !== "" && counts.get(g.name) > 1).map((g) => g.id)),
    sum,
    sumOk: Math.abs(sum - MAX_DISTRIBUTION) < 0.005,
    countOk: state.groups.length >= MIN_GROUPS && state.groups.length <= MAX_GROUPS,
    seedOk: parseSeed(state.seedText).ok,
  };
}

/**
 * The validation block stored with the config: {valid, errors: [{message, suggestion}]}.
 * @param {PanelState} state
 * @param {(config: object) => {message: string, suggestion: string}[]} [schemaErrors]
 *   extra errors from the shared JSON Schema (the panel passes its compiled validator)
 * @returns {{valid: boolean, errors: {message: string, suggestion: string}[]}}
 */
export function validateState(state, schemaErrors) {
  const check = checkState(state);
  const errors = [];
  if (!check.sumOk) errors.push({ ...ERRORS.distribution });
  if (check.nodeName) errors.push({ ...ERRORS.nodeName });
  if (check.emptyNames.size > 0) errors.push({ ...ERRORS.groupName });
  if (check.duplicateNames.size > 0) errors.push({ ...ERRORS.duplicateName });
  if (!check.countOk) errors.push({ ...ERRORS.groupCount });
  if (!check.seedOk) errors.push({ ...ERRORS.seed });
  // The shared JSON Schema is the last word: whatever it rejects and the checks above missed is
  // reported too, so `valid: true` always means "matches nodes/schemas/data_split_config.json".
  if (errors.length === 0 && schemaErrors) errors.push(...schemaErrors(configBody(state, "")));
  return { valid: errors.length === 0, errors };
}

/**
 * The config fields without validation and ports.
 * @param {PanelState} state
 * @param {string|null} portId
 * @returns {object}
 */
function configBody(state, portId) {
  const groups = state.groups.map((g) => ({ id: g.id, name: g.name, distribution: round2(g.distribution) }));
  const body = {
    name: state.name.trim(),
    distributeEqually: state.distributeEqually,
    groups,
    itemMetadata: state.itemMetadata,
    seed: parseSeed(state.seedText).seed,
  };
  if (portId !== null) {
    body.ports = groups.map((g) => ({
      portId,
      action: g.name,
      name: "item",
      type: "Item",
      portPercentage: g.distribution,
    }));
  }
  return body;
}

/**
 * The customNodeConfig stored on the node (same shape the Python node reads).
 * @param {PanelState} state
 * @param {string} portId id of the node's output port
 * @param {(config: object) => {message: string, suggestion: string}[]} [schemaErrors]
 * @returns {object}
 */
export function buildConfig(state, portId, schemaErrors) {
  const body = configBody(state, portId);
  const { ports, ...rest } = body;
  return { ...rest, validation: validateState(state, schemaErrors), ports };
}

/**
 * The node descriptor sent back with updateNodeConfig: a deep copy of the received node with
 * metadata.customNodeConfig replaced and a single output port whose actions are the group names.
 * @param {object} node the node descriptor received in the nodeConfig event (not modified)
 * @param {object} config result of buildConfig
 * @param {string} portId
 * @returns {object}
 */
export function buildNodePayload(node, config, portId) {
  const copy = structuredClone(node && typeof node === "object" ? node : {});
  copy.metadata = { ...(copy.metadata || {}), customNodeConfig: config };
  const previous = Array.isArray(copy.outputs) && copy.outputs[0] ? copy.outputs[0] : {};
  copy.outputs = [
    {
      ...previous,
      portId,
      actions: config.groups.map((g) => g.name).filter((name) => name !== ""),
      name: "item",
      nodeId: copy.id,
      type: "Item",
    },
  ];
  return copy;
}

/**
 * The output port id to keep: the node's existing one, else a new UUID.
 * @param {object} node
 * @returns {string}
 */
export function portIdOf(node) {
  const outputs = node && Array.isArray(node.outputs) ? node.outputs : [];
  const id = outputs[0] && outputs[0].portId;
  return typeof id === "string" && id ? id : newId();
}

/**
 * @typedef {{id: string, name: string, distribution: number}} Group
 * @typedef {{name: string, distributeEqually: boolean, groups: Group[], itemMetadata: boolean,
 *   seedText: string}} PanelState
 */
