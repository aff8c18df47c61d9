// A minimal stand-in for the Dataloop pipeline editor: it embeds a panel in an iframe and speaks
// the host side of the @dataloop-ai/jssdk xFrame protocol, written out by hand from the SDK's
// transport (appLib/xFrame/protocol/transport/channel.js) so the tests exercise the wire format:
//
//   every frame      {xFrame: true, id, type: "join" | "request" | "response", channelId, data,
//                     sync, responseId, error, message, timeout, sentTime}
//   handshake        host -> guest {type: "join", sync: true, channelId: <new uuid>}; the guest adopts
//                    the channel id and the sender window and answers {type: "response", responseId}
//   events           {type: "request", data: {type: "event", data: {name, payload}, source: {agentId, channelId}}}
//                    host -> guest: "nodeConfig" (the node descriptor), "theme"
//                    guest -> host: "updateNodeConfig" (the node descriptor), "app:setHeight"
//   sync requests    guest -> host {type: "request", sync: true, data: {type: "app", data: {scope, crud, data}}};
//                    the host answers {type: "response", responseId, data: <result>}
//
// With transport=sdk the same page uses the SDK's own host side instead (XFrameManager from
// @dataloop-ai/jssdk, bundled into sdk_host.js by panels/dataSplit/src/build.mjs), so the panel is
// tested against both a hand-written reading of the protocol and the SDK's implementation of it.
//
// Query parameters: panel=<url of the panel> (default: the committed Data Split build),
// node=<JSON node descriptor> (default: a node without customNodeConfig),
// settings=<JSON answered to settings READ> (default: {"theme": "light", "readonly": false}).
// Tests read window.host.updates / window.host.events and may call window.host.sendNodeConfig(node).
(function () {
  "use strict";
  const params = new URLSearchParams(window.location.search);
  const panelUrl = params.get("panel") || "/panels/dataSplit/index.html";
  const defaultNode = {
    id: "node-0001",
    name: "Model Data Split",
    type: "custom",
    namespace: { functionName: "data_split", projectName: "p", serviceName: "model-data-split-nodes",
                 moduleName: "model_data_split", packageName: "active-learning" },
    inputs: [{ portId: "in-0001", nodeId: "node-0001", type: "Item", name: "item", displayName: "item" }],
    outputs: [{ portId: "out-0001", nodeId: "node-0001", type: "Item", name: "item", displayName: "item" }],
    metadata: { position: { x: 100, y: 200, z: 0 }, pipelineNodeName: "dataSplit" },
  };
  const node = params.has("node") ? JSON.parse(params.get("node")) : defaultNode;
  const settings = params.has("settings") ? JSON.parse(params.get("settings")) : { theme: "light", readonly: false };

  const frame = document.getElementById("panel-frame");
  const lastConfig = document.getElementById("last-config");
  const uuid = () => crypto.randomUUID();
  const agentId = uuid();
  let channelId = null;
  const pending = new Map(); // frame id -> resolve of a sync frame we sent

  const host = {
    channelId: null,
    joined: false,
    updates: [], // payloads of updateNodeConfig, in order
    events: [], // every event from the guest: {name, payload}
    syncRequests: [], // every sync request from the guest (data of the agent message)
    ignored: 0, // frames that were not ours
    transport: "hand-written",
    sendNodeConfig,
    sendEvent,
  };
  window.host = host;

  function post(frameData) {
    frame.contentWindow.postMessage(JSON.parse(JSON.stringify(frameData)), "*");
  }

  function xFrame(type, fields) {
    return {
      xFrame: true, id: uuid(), type, data: {}, sync: false, error: null, message: null,
      responseId: null, timeout: 1800, sentTime: Date.now(), channelId, ...fields,
    };
  }

  function sendSync(type, data) {
    const message = xFrame(type, { data, sync: true });
    return new Promise((resolve) => {
      pending.set(message.id, resolve);
      post(message);
    });
  }

  function sendEvent(name, payload) {
    post(xFrame("request", { data: { type: "event", data: { name, payload }, source: { agentId, channelId } } }));
  }

  function sendNodeConfig(nodeDescriptor) {
    sendEvent("nodeConfig", nodeDescriptor);
  }

  function onGuestMessage(event) {
    const message = event.data;
    if (event.source !== frame.contentWindow || !message || message.xFrame !== true) return;
    if (message.channelId !== channelId) {
      host.ignored += 1;
      return;
    }
    if (message.type === "response") {
      const resolve = pending.get(message.responseId);
      pending.delete(message.responseId);
      if (resolve) resolve(message.data);
      return;
    }
    const agentMessage = message.data || {};
    if (agentMessage.type === "event") {
      const { name, payload } = agentMessage.data || {};
      record(name, payload);
    } else if (message.sync) {
      post(xFrame("response", { responseId: message.id, data: answer(agentMessage.data) }));
    }
  }

  function record(name, payload) {
    host.events.push({ name, payload });
    if (name === "app:setHeight" && Number.isFinite(payload)) {
      frame.style.height = `${payload}px`; // like the editor: the side panel grows with the content
    }
    if (name === "updateNodeConfig") {
      host.updates.push(payload);
      lastConfig.textContent = JSON.stringify(payload.metadata.customNodeConfig, null, 2);
    }
  }

  function answer(request) {
    host.syncRequests.push(request);
    return request && request.scope === "settings" && request.crud === "read" ? settings : null;
  }

  function startHandWritten() {
    window.addEventListener("message", onGuestMessage);
    frame.addEventListener("load", async () => {
      channelId = uuid();
      host.channelId = channelId;
      await sendSync("join", {});
      host.joined = true;
      sendNodeConfig(node);
    });
  }

  function startSdk() {
    host.transport = "sdk";
    const manager = new window.XFrameManager(window, async (agentMessage) => answer(agentMessage && agentMessage.data));
    manager.on("event", (data) => record(data && data.name, data && data.payload));
    let guest = null;
    host.sendEvent = (name, payload) => guest.sendEvent({ name, payload });
    host.sendNodeConfig = (nodeDescriptor) => host.sendEvent("nodeConfig", nodeDescriptor);
    frame.addEventListener("load", async () => {
      guest = await manager.registerGuest(frame.contentWindow); // the SDK's join handshake
      host.channelId = guest.channel.id;
      host.joined = true;
      host.sendNodeConfig(node);
    });
  }

  if (params.get("transport") === "sdk") startSdk();
  else startHandWritten();
  frame.src = panelUrl;
})();
