// One call between two RTCPeerConnections in this page; resolves to the caller's report in the
// icewatch W3C format (as a JSON string). The harness appends a call of icewatchCall(config):
//   config = {callId, sdkVersion, callerConfig: RTCConfiguration, seconds, waitForCandidateType}
// waitForCandidateType (optional, e.g. "srflx"): the offer reaches the callee only once the caller
// has gathered a candidate of that type (at most 3 s). In Chromium 156 gathering completed when
// ICE connected, and a srflx whose STUN answer came after the checks began was missing (4 of 6).
// The callee has no ICE servers and the default policy, so what the caller gathers decides the path.
async function icewatchCall(config) {
  const events = [];
  const snapshots = [];
  const log = (type, extra) => events.push(Object.assign({at: Date.now(), type: type}, extra));

  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: false});
  const caller = new RTCPeerConnection(config.callerConfig);
  const callee = new RTCPeerConnection({});

  caller.addEventListener("icecandidate", (e) => {
    const c = e.candidate;
    log("icecandidate", {
      candidate: c === null ? null : {
        address: c.address,
        port: c.port,
        protocol: c.protocol,
        candidateType: c.type,
        relayProtocol: c.relayProtocol === undefined ? null : c.relayProtocol,
        url: c.url !== undefined && c.url !== null ? c.url : (e.url || null),
        priority: c.priority,
      },
    });
  });
  caller.addEventListener("icecandidateerror", (e) => log("icecandidateerror", {
    url: e.url, errorCode: e.errorCode, errorText: e.errorText, address: e.address, port: e.port,
  }));
  caller.addEventListener("iceconnectionstatechange",
    () => log("iceconnectionstatechange", {state: caller.iceConnectionState}));
  caller.addEventListener("connectionstatechange",
    () => log("connectionstatechange", {state: caller.connectionState}));
  caller.addEventListener("icegatheringstatechange",
    () => log("icegatheringstatechange", {state: caller.iceGatheringState}));

  // Trickle both ways inside the page; candidates wait until the remote description is set.
  const trickle = (from, to) => {
    const queue = [];
    from.addEventListener("icecandidate", (e) => {
      if (e.candidate === null) return;
      if (to.remoteDescription) to.addIceCandidate(e.candidate).catch(() => {});
      else queue.push(e.candidate);
    });
    return async () => {
      for (const c of queue.splice(0)) await to.addIceCandidate(c).catch(() => {});
    };
  };
  const flushToCallee = trickle(caller, callee);
  const flushToCaller = trickle(callee, caller);

  const track = stream.getAudioTracks()[0];
  const sender = caller.addTrack(track, stream);
  callee.addTrack(track.clone(), stream);

  let dtlsWatched = false;
  const watchDtls = () => {
    const t = sender.transport;
    if (dtlsWatched || !t) return;
    dtlsWatched = true;
    t.addEventListener("statechange", () => log("dtlsstatechange", {state: t.state}));
  };

  const wanted = new Promise((resolve) => {
    if (!config.waitForCandidateType) return resolve();
    setTimeout(resolve, 3000);
    caller.addEventListener("icecandidate", (e) => {
      if (e.candidate && e.candidate.type === config.waitForCandidateType) resolve();
    });
  });

  const offer = await caller.createOffer();
  await caller.setLocalDescription(offer);
  watchDtls();
  await wanted;
  await callee.setRemoteDescription(offer);
  await flushToCallee();
  const answer = await callee.createAnswer();
  await callee.setLocalDescription(answer);
  await caller.setRemoteDescription(answer);
  await flushToCaller();
  watchDtls();

  const started = Date.now();
  for (let i = 1; i <= config.seconds; i++) {
    const wait = started + i * 1000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const report = await caller.getStats();
    const stats = [];
    report.forEach((s) => stats.push(s));
    snapshots.push({timestamp: Date.now(), stats: stats});
  }
  caller.close();
  callee.close();
  track.stop();

  const servers = (config.callerConfig.iceServers || []).map((s) => ({
    urls: Array.isArray(s.urls) ? s.urls.slice() : [s.urls],
  }));
  return JSON.stringify({
    format: "w3c",
    call_id: config.callId,
    sdk: {name: "chromium-testbed", version: config.sdkVersion},
    browser: "chrome",
    ice_servers: servers,
    ice_transport_policy: config.callerConfig.iceTransportPolicy || "all",
    events: events,
    snapshots: snapshots,
  });
}
