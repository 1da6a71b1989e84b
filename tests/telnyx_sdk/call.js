// Drives the unmodified Telnyx SDK (window.TelnyxWebRTC, its UMD bundle) through one call against
// the in-page fake Verto server (fake_verto.js). The harness evaluates icewatchTelnyxCall(config):
//   config = {host: "ws://127.0.0.1:<icewatch port>", callReportId, voiceSdkId, iceServers: RTCIceServer[],
//             forceRelayCandidate: bool, seconds: how long the call stays up once active}
// Resolves (as a JSON string) to what the page saw: the SDK's call id, the call's states, the
// signaling methods each side sent, the SDK's warnings and errors, and the fake server's errors.
// The SDK's own call report goes to <host>/call_report by fetch when the call ends; the call to
// client.disconnect() waits for that upload (the SDK drains pending uploads before it closes).
async function icewatchTelnyxCall(config) {
  const verto = window.icewatchVerto;
  verto.callReportId = config.callReportId;
  verto.voiceSdkId = config.voiceSdkId || null;
  const seen = {callId: null, states: [], warnings: [], errors: [], ready: false};
  const within = (promise, ms, what) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(what + " did not happen in " + ms + " ms")), ms)),
  ]);

  const client = new TelnyxWebRTC.TelnyxRTC({
    host: config.host,
    login: "testbed",
    password: "testbed-only",
    iceServers: config.iceServers,
  });
  client.on("telnyx.warning", (w) => seen.warnings.push(w && w.warning ? w.warning.code : String(w)));
  client.on("telnyx.error", (e) => seen.errors.push(e && e.error ? String(e.error.message || e.error.code) : String(e)));

  let onState = null;
  client.on("telnyx.notification", (n) => {
    if (n.type === "callUpdate" && n.call) {
      seen.states.push(n.call.state);
      if (onState) onState(n.call.state);
    }
  });
  const ready = new Promise((resolve) => client.on("telnyx.ready", resolve));
  const reached = (state) => new Promise((resolve) => {
    const previous = onState;
    onState = (s) => {
      if (previous) previous(s);
      if (s === state) resolve();
    };
  });

  try {
    await client.connect();
    await within(ready, 10000, "telnyx.ready");
    seen.ready = true;
    const active = reached("active");
    const destroyed = reached("destroy");
    const call = client.newCall({
      destinationNumber: "testbed-callee",
      callerNumber: "testbed-caller",
      audio: true,
      video: false,
      forceRelayCandidate: config.forceRelayCandidate,
    });
    seen.callId = call.id;
    await within(active, 15000, "the call becoming active");
    // ICE and DTLS connect after the answer; keep the call up for the asked seconds.
    await new Promise((resolve) => setTimeout(resolve, config.seconds * 1000));
    verto.hangup(call.id);
    await within(destroyed, 10000, "the call ending");
    await within(client.disconnect(), 20000, "client.disconnect() (the call report upload)");
  } catch (e) {
    seen.errors.push("page: " + String(e && e.message ? e.message : e));
  }
  return JSON.stringify(Object.assign(seen, {
    sdkVersion: TelnyxWebRTC.TelnyxRTC.version || null,
    socketUrls: verto.urls,
    sdkSent: verto.received,
    serverSent: verto.sent,
    vertoErrors: verto.errors,
  }));
}
