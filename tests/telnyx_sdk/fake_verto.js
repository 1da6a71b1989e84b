// An in-page stand-in for Telnyx's Verto signaling server, for tests/integration/test_telnyx_sdk.py.
//
// It replaces only window.WebSocket, and must run before the SDK's bundle: the SDK keeps the
// WebSocket constructor it finds when it loads. Everything else the SDK does is its own, including
// its call-report collector, which posts to http(s)://<the socket's host>/call_report.
//
// The protocol, as the SDK 2.27.10 speaks it (JSON-RPC 2.0 text frames):
//   SDK -> login {login, passwd, ...}                 <- result {sessid}
//   server -> telnyx_rtc.clientReady                  SDK -> telnyx_rtc.gatewayState
//   <- result {params: {state: "REGED", call_report_id}}  (the collector needs this id)
//   SDK -> telnyx_rtc.invite {sdp, dialogParams.callID}   <- result {callID}
//   server -> telnyx_rtc.answer {callID, sdp}         SDK acks with result {method}
//   server -> telnyx_rtc.bye {callID, cause}          the SDK hangs up and posts its call report
// Any other request (telnyx_rtc.ping, a bye from the SDK, ...) gets an empty success result.
// Every server message carries voice_sdk_id when one is set; the SDK sends it back as the
// x-voice-sdk-id header of its report.
//
// The answer comes from a second RTCPeerConnection in this page (no ICE servers, default policy,
// fake audio), so what the SDK's peer gathers decides the path.
(function () {
  "use strict";

  const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;

  const verto = {
    callReportId: null, // set by the test before the SDK connects
    voiceSdkId: null, // optional: sent on every server message, as Telnyx's server does (-> x-voice-sdk-id)
    urls: [], // every URL the SDK opened a socket to
    received: [], // methods (or "result") the SDK sent, in order
    sent: [], // methods the server sent, in order
    calls: {}, // callID -> {callee: RTCPeerConnection, socket}
    errors: [],
    hangup: null, // hangup(callID): the server ends the call (telnyx_rtc.bye)
  };

  const newId = () => crypto.randomUUID();

  class FakeVertoSocket {
    constructor(url) {
      this.url = String(url);
      this.readyState = CONNECTING;
      this.protocol = "";
      this.extensions = "";
      this.binaryType = "blob";
      this.bufferedAmount = 0;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      verto.urls.push(this.url);
      setTimeout(() => {
        if (this.readyState !== CONNECTING) return;
        this.readyState = OPEN;
        if (this.onopen) this.onopen({type: "open", target: this});
      }, 0);
    }

    send(text) {
      if (this.readyState !== OPEN) throw new DOMException("the socket is not open", "InvalidStateError");
      let message;
      try {
        message = JSON.parse(text);
      } catch (e) {
        verto.errors.push("not JSON: " + String(text).slice(0, 200));
        return;
      }
      verto.received.push(message.method || "result");
      handle(this, message).catch((e) => verto.errors.push(String(e && e.stack ? e.stack : e)));
    }

    close(code, reason) {
      if (this.readyState === CLOSED || this.readyState === CLOSING) return;
      this.readyState = CLOSING;
      setTimeout(() => {
        this.readyState = CLOSED;
        if (this.onclose) this.onclose({type: "close", code: code || 1000, reason: reason || "", wasClean: true});
      }, 0);
    }

    // Server -> SDK.
    deliver(message) {
      if (this.readyState !== OPEN) return;
      if (message.method) verto.sent.push(message.method);
      const extra = verto.voiceSdkId ? {voice_sdk_id: verto.voiceSdkId} : {};
      const data = JSON.stringify(Object.assign({jsonrpc: "2.0"}, message, extra));
      setTimeout(() => {
        if (this.readyState === OPEN && this.onmessage) this.onmessage({type: "message", data: data});
      }, 0);
    }
  }
  FakeVertoSocket.CONNECTING = CONNECTING;
  FakeVertoSocket.OPEN = OPEN;
  FakeVertoSocket.CLOSING = CLOSING;
  FakeVertoSocket.CLOSED = CLOSED;

  const reply = (socket, request, result) => socket.deliver({id: request.id, result: result});

  async function handle(socket, message) {
    const method = message.method;
    const params = message.params || {};
    if (!method) return; // the SDK's acknowledgement of something the server sent
    if (method === "login") {
      reply(socket, message, {message: "logged in", sessid: params.sessid || newId()});
      socket.deliver({id: newId(), method: "telnyx_rtc.clientReady", params: {}});
    } else if (method === "telnyx_rtc.gatewayState") {
      if (!verto.callReportId) throw new Error("the test set no call_report_id");
      reply(socket, message, {
        params: {state: "REGED", call_report_id: verto.callReportId, dc: "testbed", region: "testbed"},
      });
    } else if (method === "telnyx_rtc.invite") {
      const callID = params.dialogParams && params.dialogParams.callID;
      if (!callID || typeof params.sdp !== "string") throw new Error("invite without callID or sdp");
      reply(socket, message, {message: "CALL CREATED", callID: callID, sessid: params.sessid});
      const sdp = await answerFor(callID, params.sdp, socket);
      socket.deliver({id: newId(), method: "telnyx_rtc.answer", params: {callID: callID, sdp: sdp}});
    } else if (method === "telnyx_rtc.bye") {
      reply(socket, message, {callID: params.callID, message: "CALL ENDED", sessid: params.sessid});
      closeCallee(params.callID);
    } else {
      reply(socket, message, {method: method});
    }
  }

  // The far end: a second peer connection that answers the SDK's (complete, non-trickle) offer.
  async function answerFor(callID, offerSdp, socket) {
    const callee = new RTCPeerConnection({});
    verto.calls[callID] = {callee: callee, socket: socket};
    const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: false});
    for (const track of stream.getTracks()) callee.addTrack(track, stream);
    await callee.setRemoteDescription({type: "offer", sdp: offerSdp});
    const gathered = new Promise((resolve) => {
      if (callee.iceGatheringState === "complete") resolve();
      callee.addEventListener("icegatheringstatechange", () => {
        if (callee.iceGatheringState === "complete") resolve();
      });
    });
    await callee.setLocalDescription(await callee.createAnswer());
    await Promise.race([gathered, new Promise((resolve) => setTimeout(resolve, 3000))]);
    return callee.localDescription.sdp;
  }

  function closeCallee(callID) {
    const call = verto.calls[callID];
    if (call && call.callee.signalingState !== "closed") call.callee.close();
  }

  verto.hangup = (callID) => {
    const call = verto.calls[callID];
    if (!call) throw new Error("no call " + callID);
    call.socket.deliver({
      id: newId(),
      method: "telnyx_rtc.bye",
      params: {callID: callID, cause: "NORMAL_CLEARING", causeCode: 16},
    });
    closeCallee(callID);
  };

  window.WebSocket = FakeVertoSocket;
  window.icewatchVerto = verto;
})();
