// The Data Split panel: wires the DOM of index.html to the pure logic in config.js and talks to
// the pipeline editor through the platform's JS SDK (@dataloop-ai/jssdk).
//
// Protocol (host = pipeline editor, guest = this iframe):
//   host -> guest  event "nodeConfig"        payload: the node descriptor (metadata.customNodeConfig may be absent)
//   host -> guest  event "theme"             payload: "light" | "dark"
//   guest -> host  event "updateNodeConfig"  payload: the node descriptor with the new customNodeConfig and outputs
//   guest -> host  event "app:setHeight"     payload: the document height in px
//   guest -> host  settings READ (sync)      answer: {theme, readonly}
import { DlEvent, DlFrameEvent } from "@dataloop-ai/jssdk/dist/appLib/SDKDrivers/xFrameDriver/events/index.js";
import { AppMessageScope, CrudType } from "@dataloop-ai/jssdk/dist/appLib/xFrame/protocol/messageEnum.js";
import { GuestAgent } from "@dataloop-ai/jssdk/dist/appLib/xFrame/protocol/agent/GuestAgent.js";
import validateSchema from "virtual:config-validator";
import {
  MAX_GROUPS,
  MIN_GROUPS,
  addGroup,
  applyEqualDistribution,
  buildConfig,
  buildNodePayload,
  checkState,
  clampDistribution,
  defaultState,
  portIdOf,
  removeGroup,
  round2,
  sanitizeGroupName,
  stateFromConfig,
  updateGroup,
} from "./config.js";

const SEND_DELAY_MS = 150;
const COLORS = ["#3452ff", "#20a779", "#f59f00", "#d6336c", "#7048e8"];

const $ = (id) => document.getElementById(id);
const ui = {
  panel: $("panel"),
  nodeName: $("node-name"),
  nodeNameError: $("node-name-error"),
  equally: $("distribute-equally"),
  bar: $("bar"),
  groups: $("groups"),
  addGroup: $("add-group"),
  sum: $("sum"),
  sumStatus: $("sum-status"),
  itemMetadata: $("item-metadata"),
  seed: $("seed"),
  validation: $("validation"),
};

let state = defaultState();
let node = null; // the node descriptor last received from the host (never modified)
let portId = null;
let readonly = false;
let sendTimer = null;
let dl = null;

/** Errors of the shared JSON Schema (compiled at build time), as {message, suggestion}. */
function schemaErrors(config) {
  if (validateSchema(config)) return [];
  return (validateSchema.errors || []).map((e) => {
    const path = e.instancePath.replace(/^\//, "").replace(/\/(\d+)/g, "[$1]").replace(/\//g, ".") || "config";
    return { message: `Invalid ${path}: ${e.message}`, suggestion: "Please adjust this field" };
  });
}

function setState(next, { rebuild = false } = {}) {
  if (!rebuild && JSON.stringify(next) === JSON.stringify(state)) return; // e.g. a blur that changed nothing
  const structural = rebuild || next.groups.map((g) => g.id).join() !== state.groups.map((g) => g.id).join();
  state = next;
  render(structural);
  scheduleSend();
}

// ---------------------------------------------------------------- view

function groupRow(group, index) {
  const row = document.createElement("div");
  row.className = "row";
  row.setAttribute("role", "row");
  row.dataset.id = group.id;
  row.innerHTML = `
    <span class="name-cell">
      <span class="swatch"></span>
      <input class="input" type="text" autocomplete="off" spellcheck="false" maxlength="64"
             placeholder="Insert subset name" aria-label="Subset name" />
    </span>
    <span class="dist-cell">
      <input class="input number" type="number" min="0" max="100" step="0.01" aria-label="Distribution" />
      <span class="unit">%</span>
    </span>
    <button class="icon-button" type="button" aria-label="Remove subset" title="Remove subset">
      <svg viewBox="0 0 16 16" aria-hidden="true"><path d="M4 4l8 8M12 4l-8 8" /></svg>
    </button>`;
  const [nameInput, distInput] = row.querySelectorAll("input");
  const remove = row.querySelector("button");
  nameInput.dataset.testid = `group-name-${index}`;
  distInput.dataset.testid = `group-distribution-${index}`;
  remove.dataset.testid = `remove-group-${index}`;
  row.querySelector(".swatch").style.background = COLORS[index % COLORS.length];
  nameInput.value = group.name;
  distInput.value = String(group.distribution);

  nameInput.addEventListener("input", () => {
    const clean = sanitizeGroupName(nameInput.value);
    if (clean !== nameInput.value) {
      const caret = Math.max(0, (nameInput.selectionStart ?? clean.length) - (nameInput.value.length - clean.length));
      nameInput.value = clean;
      nameInput.setSelectionRange(caret, caret);
    }
    setState(updateGroup(state, group.id, { name: clean }));
  });
  distInput.addEventListener("input", () => {
    setState(updateGroup(state, group.id, { distribution: clampDistribution(distInput.value) }));
  });
  distInput.addEventListener("change", () => {
    const value = clampDistribution(distInput.value);
    distInput.value = String(value);
    setState(updateGroup(state, group.id, { distribution: value }));
  });
  remove.addEventListener("click", () => setState(removeGroup(state, group.id)));
  return row;
}

function setValue(input, value) {
  if (document.activeElement !== input && input.value !== value) input.value = value;
}

function render(structural) {
  const check = checkState(state);
  if (structural) ui.groups.replaceChildren(...state.groups.map(groupRow));

  setValue(ui.nodeName, state.name);
  ui.nodeName.classList.toggle("invalid", check.nodeName);
  ui.nodeNameError.hidden = !check.nodeName;
  ui.equally.checked = state.distributeEqually;
  ui.itemMetadata.checked = state.itemMetadata;
  setValue(ui.seed, state.seedText);
  ui.seed.classList.toggle("invalid", !check.seedOk);

  const rows = ui.groups.children;
  state.groups.forEach((group, i) => {
    const [nameInput, distInput] = rows[i].querySelectorAll("input");
    setValue(nameInput, group.name);
    if (document.activeElement !== distInput && clampDistribution(distInput.value) !== group.distribution) {
      distInput.value = String(group.distribution);
    }
    nameInput.classList.toggle("invalid", check.emptyNames.has(group.id) || check.duplicateNames.has(group.id));
    distInput.classList.toggle("invalid", !check.sumOk);
    nameInput.disabled = readonly;
    distInput.disabled = readonly || state.distributeEqually;
    rows[i].querySelector("button").disabled = readonly || state.groups.length <= MIN_GROUPS;
  });

  ui.bar.replaceChildren(
    ...state.groups.map((group, i) => {
      const segment = document.createElement("span");
      segment.style.width = `${Math.min(group.distribution, 100)}%`;
      segment.style.background = COLORS[i % COLORS.length];
      segment.title = `${group.name || "(unnamed)"}: ${group.distribution}%`;
      return segment;
    }),
  );

  ui.sum.textContent = `${check.sum}%`;
  const diff = round2(100 - check.sum);
  ui.sum.className = `sum ${check.sumOk ? "ok" : diff > 0 ? "warning" : "error"}`;
  ui.sumStatus.className = `pill ${check.sumOk ? "ok" : diff > 0 ? "warning" : "error"}`;
  ui.sumStatus.textContent = check.sumOk ? "Complete" : diff > 0 ? `${diff}% remaining` : `${-diff}% exceeding`;

  ui.addGroup.disabled = readonly || state.groups.length >= MAX_GROUPS;
  ui.addGroup.title = state.groups.length >= MAX_GROUPS ? `At most ${MAX_GROUPS} subsets` : "";
  for (const input of [ui.nodeName, ui.equally, ui.itemMetadata, ui.seed]) input.disabled = readonly;

  const { validation } = buildConfig(state, portId || "", schemaErrors);
  ui.validation.className = `validation ${validation.valid ? "valid" : "invalid"}`;
  ui.validation.dataset.valid = String(validation.valid);
  if (validation.valid) {
    ui.validation.innerHTML = `<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M3.5 8.5l3 3 6-7" /></svg>
      <span>Configuration is valid</span>`;
  } else {
    const list = document.createElement("ul");
    for (const error of validation.errors) {
      const item = document.createElement("li");
      const message = document.createElement("strong");
      message.textContent = error.message;
      const suggestion = document.createElement("span");
      suggestion.textContent = error.suggestion || "";
      item.append(message, suggestion);
      list.append(item);
    }
    ui.validation.replaceChildren(list);
  }
}

// ---------------------------------------------------------------- host messages

function safeSend(name, payload) {
  try {
    dl.sendEvent({ name, payload });
  } catch (error) {
    console.error(`Failed to send ${name}`, error);
  }
}

function sendNow() {
  clearTimeout(sendTimer);
  sendTimer = null;
  if (!dl || !node) return; // nothing to update before the host sent the node
  const config = buildConfig(state, portId, schemaErrors);
  safeSend(DlFrameEvent.UPDATE_NODE_CONFIG, buildNodePayload(node, config, portId));
}

function scheduleSend() {
  clearTimeout(sendTimer);
  sendTimer = setTimeout(sendNow, SEND_DELAY_MS);
}

function onNodeConfig(received) {
  node = received && typeof received === "object" ? received : {};
  portId = portIdOf(node);
  state = applyEqualDistribution(stateFromConfig(node.metadata && node.metadata.customNodeConfig));
  ui.panel.setAttribute("aria-busy", "false");
  render(true);
  sendNow(); // the host stores the defaults (or the normalised config) right away
  safeSend(DlFrameEvent.SET_HEIGHT, document.body.scrollHeight);
}

function applyTheme(theme) {
  document.documentElement.classList.toggle("dark", theme === "dark");
}

async function loadSettings() {
  try {
    const settings = await dl.settings.get();
    applyTheme(settings && settings.theme);
    readonly = !!settings && (settings.readonly === true || settings.readonly === "view");
    render(false);
  } catch (error) {
    console.warn("No app settings from the host; using defaults", error);
  }
}

// ---------------------------------------------------------------- DOM events

ui.nodeName.addEventListener("input", () => setState({ ...state, name: ui.nodeName.value }));
ui.nodeName.addEventListener("blur", () => {
  ui.nodeName.value = ui.nodeName.value.trim();
  setState({ ...state, name: ui.nodeName.value });
});
ui.equally.addEventListener("change", () =>
  setState(applyEqualDistribution({ ...state, distributeEqually: ui.equally.checked }), { rebuild: true }),
);
ui.addGroup.addEventListener("click", () => setState(addGroup(state)));
ui.itemMetadata.addEventListener("change", () => setState({ ...state, itemMetadata: ui.itemMetadata.checked }));
ui.seed.addEventListener("input", () => setState({ ...state, seedText: ui.seed.value.trim() }));

if ("ResizeObserver" in window) {
  new ResizeObserver(() => {
    if (dl && node) safeSend(DlFrameEvent.SET_HEIGHT, document.body.scrollHeight);
  }).observe(document.body);
}

render(true);

/**
 * The slice of the SDK's xFrameDriver this panel needs, on the SDK's own transport (GuestAgent):
 * the same wire messages as `new xFrameDriver()` without bundling every entity repository.
 */
function connect() {
  const agent = new GuestAgent(window);
  const handlers = new Map([
    [DlEvent.NODE_CONFIG, onNodeConfig],
    [DlEvent.THEME, applyTheme],
  ]);
  agent.on("guestReady", () => loadSettings());
  agent.on("event", (message) => {
    const handler = message && message.data && handlers.get(message.data.name);
    if (handler) handler(message.data.payload);
  });
  return {
    sendEvent: (data) => agent.sendEvent(data),
    settings: {
      get: () =>
        agent.sendSync({
          scope: AppMessageScope.SETTINGS,
          crud: CrudType.READ,
          data: { channelId: agent.channel && agent.channel.id },
        }),
    },
  };
}

// For diagnostics and tests: check any config against the bundled shared schema.
window.dataSplitPanel = Object.freeze({ validateConfig: (config) => schemaErrors(config) });

try {
  dl = connect();
} catch (error) {
  console.error("Error initializing the Dataloop SDK transport", error);
}
