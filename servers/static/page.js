// The page's clients, one per transport a browser has, each with the browser's own API.
// EventSource reconnects (or gives up) by itself; the others resume from their cursor with
// this page's logic: retry on rtplay's schedule (the same policy and, given a seed, the same
// jitter draws as rtplay's client of the transport: retry.js), and an application heartbeat
// (ping every 2 s, dead after 3 s more of silence) where the API has none.
"use strict";

const POLL_INTERVAL_MS = 1000;   // rtplay's poll client default
const LONGPOLL_TIMEOUT_S = 25;   // server holds a long-poll at most this long
const PING_INTERVAL_MS = 2000, PING_TIMEOUT_MS = 3000;  // rtplay's heartbeat: 2 s + 3 s
const RTC_OPEN_TIMEOUT_MS = 10000;  // both channels open after the answer
const GATHER_TIMEOUT_MS = 2000;     // ICE gathering (no STUN): local interfaces only
const MAX_EARLY_DATAGRAMS = 1024;   // live-only messages before their start is known
const REPORT_INTERVAL_MS = 250;     // how often the page tells the server its figures

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();

// rtplay's heartbeat: `ping` every PING_INTERVAL_MS; `dead` when nothing at all was heard
// within PING_TIMEOUT_MS of a ping.
function heartbeat(ping, dead) {
  let last = performance.now(), timer = null;
  const checks = new Set();  // one per ping in flight: at most PING_TIMEOUT_MS / PING_INTERVAL_MS + 1
  const stop = () => { clearInterval(timer); checks.forEach(clearTimeout); checks.clear(); };
  return {
    heard() { last = performance.now(); },
    start() {
      last = performance.now();
      timer = setInterval(() => {
        const sent = performance.now();
        try { ping(); } catch { /* closing: the close path reports it */ }
        const check = setTimeout(() => {
          checks.delete(check);
          if (last < sent) { stop(); dead(); }
        }, PING_TIMEOUT_MS);
        checks.add(check);
      }, PING_INTERVAL_MS);
    },
    stop,
  };
}

function cursor(client, channel) { return client.channels[channel].tracker.highest; }

// --- poll and long-poll --------------------------------------------------------------------

function batch(client, body) {
  if (body.reset) client.reset("main", body.reset);
  const received = now();
  for (const env of body.messages) client.channels.main.envelope(env, received);
}

async function pollSession(client, ctl) {
  while (!ctl.stopped) {
    const started = performance.now();
    const r = await fetch(`/poll?since=${cursor(client, "main")}`, {cache: "no-store"});
    if (!r.ok) throw await refused(r);
    batch(client, await r.json());
    ctl.opened();
    await sleep(Math.max(0, POLL_INTERVAL_MS - (performance.now() - started)));
  }
}

async function longpollSession(client, ctl) {
  const abort = new AbortController();
  ctl.close = () => abort.abort();
  while (!ctl.stopped) {
    const url = `/longpoll?since=${cursor(client, "main")}&timeout=${LONGPOLL_TIMEOUT_S}`;
    const r = await fetch(url, {cache: "no-store", signal: abort.signal});
    if (r.status === 204) { ctl.opened(); continue; }
    if (!r.ok) throw await refused(r);
    batch(client, await r.json());
    ctl.opened();
  }
}

// --- EventSource: the browser decides ------------------------------------------------------

function eventSource(client) {
  const es = new EventSource(`/sse?lastEventId=${cursor(client, "main")}`);
  es.onopen = () => client.opened();
  es.onmessage = (e) => client.channels.main.envelope(JSON.parse(e.data), now());
  es.addEventListener("reset", (e) => client.reset("main", JSON.parse(e.data)));
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) client.down("failed", "the browser gave up (non-200 answer or wrong type)");
    else client.down("retrying", "the browser reconnects by itself (Last-Event-ID)");
  };
  return () => es.close();
}

// --- WebSocket -----------------------------------------------------------------------------

function wsSession(client, ctl) {
  return new Promise((resolve, reject) => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const sock = new WebSocket(`${proto}://${location.host}/ws?since=${cursor(client, "main")}`);
    const hb = heartbeat(() => sock.send(JSON.stringify({ping: now()})), () => {
      sock.close(4000, "heartbeat"); reject(new Error("heartbeat: no answer to a ping within 3 s"));
    });
    ctl.close = () => { hb.stop(); sock.close(); };
    sock.onopen = () => { ctl.opened(); hb.start(); };
    sock.onmessage = (e) => {
      hb.heard();
      const m = JSON.parse(e.data);
      if (m.reset) client.reset("main", m.reset);
      else if (!("pong" in m)) client.channels.main.envelope(m, now());
    };
    sock.onclose = (e) => { hb.stop(); reject(new Error(`closed ${e.code}${e.reason ? " " + e.reason : ""}`)); };
  });
}

// --- WebTransport (draft-02 over HTTP/3, pinned certificate hash) --------------------------

function hexBytes(hex) { return new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16))); }

async function* lines(readable) {
  const reader = readable.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    const parts = (rest + value).split("\n");
    rest = parts.pop();
    for (const line of parts) if (line) yield JSON.parse(line);
  }
}

async function wtSession(client, ctl, config) {
  const url = `${config.wt_url}?since=${cursor(client, "stream")}`;
  const wt = new WebTransport(url, {serverCertificateHashes: [{algorithm: "sha-256", value: hexBytes(config.cert_sha256)}]});
  ctl.close = () => { try { wt.close(); } catch { /* already closed */ } };
  await wt.ready;
  const {stream, datagram} = client.channels;
  let live = null;
  const early = [];
  const pings = await wt.createBidirectionalStream();
  const writer = pings.writable.getWriter();
  const encoder = new TextEncoder();
  let dead;
  const died = new Promise((_, reject) => { dead = reject; });
  const hb = heartbeat(() => writer.write(encoder.encode(JSON.stringify({ping: now()}) + "\n")),
                       () => dead(new Error("heartbeat: no answer to a ping within 3 s")));
  const close = ctl.close;
  ctl.close = () => { hb.stop(); close(); };
  (async () => { for await (const _ of lines(pings.readable)) hb.heard(); })().catch(() => {});
  (async () => {
    const reader = wt.datagrams.readable.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      hb.heard();
      const env = JSON.parse(decoder.decode(value));
      if (live === null) { if (early.length < MAX_EARLY_DATAGRAMS) early.push([env, now()]); }
      else if (env.seq >= live) datagram.envelope(env, now());
    }
  })().catch(() => {});
  const reading = (async () => {
    const incoming = wt.incomingUnidirectionalStreams.getReader();
    const {value: uni, done} = await incoming.read();
    if (done) throw new Error("session closed before its stream");
    ctl.opened(); hb.start();
    for await (const m of lines(uni)) {
      hb.heard();
      if (m.reset) client.reset("stream", m.reset);
      else if ("live" in m) {
        live = m.live; client.live("datagram", live);
        for (const [env, at] of early.splice(0)) if (env.seq >= live) datagram.envelope(env, at);
      } else stream.envelope(m, now());
    }
    throw new Error("stream ended");
  })();
  const info = await Promise.race([reading, died, wt.closed.then((i) => i)]);
  throw new Error(`session closed${info && info.reason ? ": " + info.reason : ""}`);
}

// --- WebRTC (RTCPeerConnection, both channels) ----------------------------------------------

// The offer goes once it carries a UDP candidate, or gathering completes (or times out).
// rtplay's server checks UDP candidates only (and learns any other address of ours from our
// checks); Chromium's last candidate, an active TCP one (port 9), comes ~125 ms after its UDP
// host candidate, and waiting for it made every attempt that much slower than rtplay's.
const UDP_CANDIDATE = /^a=candidate:\S+ \d+ udp /im;

function gathered(pc) {
  return new Promise((resolve) => {
    const ready = () => pc.iceGatheringState === "complete" || UDP_CANDIDATE.test(pc.localDescription?.sdp ?? "");
    if (ready()) return resolve();
    pc.addEventListener("icegatheringstatechange", () => ready() && resolve());
    pc.addEventListener("icecandidate", () => ready() && resolve());
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

async function rtcSession(client, ctl) {
  const pc = new RTCPeerConnection();
  ctl.close = () => pc.close();
  const rel = pc.createDataChannel("reliable");
  const unr = pc.createDataChannel("unreliable", {ordered: false, maxRetransmits: 0});
  const {reliable, unreliable} = client.channels;
  let live = null, end;
  const early = [];
  let closing = false;  // the page closes the connection itself (an attempt failed, or retry pressed)
  const ended = new Promise((_, reject) => { end = (why) => reject(new Error(why)); });
  ended.catch(() => {});  // awaited only once open: an attempt that fails before must not leave it unhandled
  const hb = heartbeat(() => rel.send(JSON.stringify({ping: now()})), () => end("heartbeat: no answer to a ping within 3 s"));
  ctl.close = () => { closing = true; hb.stop(); pc.close(); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" || pc.connectionState === "closed") end(`peer connection ${pc.connectionState}`);
  };
  const closed = (name) => () => end(closing ? `the page closed the ${name} channel` : `the ${name} channel closed`);
  rel.onclose = closed("reliable");
  unr.onclose = closed("unreliable");
  rel.onmessage = (e) => {
    hb.heard();
    const m = JSON.parse(e.data);
    if (m.reset) client.reset("reliable", m.reset);
    else if ("live" in m) {
      live = m.live; client.live("unreliable", live);
      for (const [env, at] of early.splice(0)) if (env.seq >= live) unreliable.envelope(env, at);
    } else if (!("pong" in m)) reliable.envelope(m, now());
  };
  unr.onmessage = (e) => {
    hb.heard();
    const env = JSON.parse(e.data);
    if (live === null) { if (early.length < MAX_EARLY_DATAGRAMS) early.push([env, now()]); }
    else if (env.seq >= live) unreliable.envelope(env, now());
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const r = await fetch(`/rtc/offer?since=${cursor(client, "reliable")}`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp}),
  });
  if (!r.ok) throw await refused(r);
  await pc.setRemoteDescription(await r.json());
  const open = (ch) => ch.readyState === "open" ? Promise.resolve() : new Promise((res) => ch.addEventListener("open", res));
  const timeout = sleep(RTC_OPEN_TIMEOUT_MS).then(() => { throw new Error("channels not open in 10 s"); });
  await Promise.race([Promise.all([open(rel), open(unr)]), timeout, ended]);
  ctl.opened(); hb.start();
  await ended;
}

// --- panels and reporting --------------------------------------------------------------------

const TRANSPORTS = [  // [name, channels, start(client, config, policy) -> stop]
  ["poll", ["main"], (c, config, policy) => retrying(c, pollSession, policy)],
  ["longpoll", ["main"], (c, config, policy) => retrying(c, longpollSession, policy)],
  ["sse", ["main"], eventSource],
  ["ws", ["main"], (c, config, policy) => retrying(c, wsSession, policy)],
  ["wt", ["stream", "datagram"], (c, config, policy) => retrying(c, (cl, ctl) => wtSession(cl, ctl, config), policy)],
  ["rtc", ["reliable", "unreliable"], (c, config, policy) => retrying(c, rtcSession, policy)],
];
const COLUMNS = ["channel", "delivered", "lost", "reset", "dup", "ooo", "p50", "max"];  // latency in ms

function panel(client, restart) {
  const section = document.createElement("section");
  section.id = `panel-${client.name}`;
  section.innerHTML = `<header><h2>${client.name}</h2><span class="state"></span><button>retry</button></header>
    <table title="latency (p50, max) in ms"><tr>${COLUMNS.map((c) => `<th>${c}</th>`).join("")}</tr></table>
    <div class="chart"></div><div class="conn"></div><ol class="log"></ol>`;
  section.querySelector("button").onclick = restart;
  const table = section.querySelector("table");
  const rows = Object.keys(client.channels).map(() => { const tr = table.insertRow(); COLUMNS.forEach(() => tr.insertCell()); return tr; });
  const fmt = (v) => v === null ? "-" : v < 100 ? v.toFixed(1) : v.toFixed(0);
  const chart = makeChart(section.querySelector(".chart"), client);
  let logged = 0;  // log lines ever written: the first shown line's number
  const render = () => {
    const state = section.querySelector(".state");
    state.textContent = client.state; state.className = `state ${client.state}`;
    state.title = client.detail;
    Object.values(client.channels).forEach((ch, i) => {
      const r = ch.report(), lat = r.latency_ms;
      const cells = [ch.name, r.delivered, r.missing, r.lost_to_reset, r.duplicates, r.out_of_order, fmt(lat.p50), fmt(lat.max)];
      cells.forEach((v, j) => { rows[i].cells[j].textContent = v; });
      rows[i].cells[2].className = r.missing ? "lost" : "";
      rows[i].cells[3].className = r.lost_to_reset ? "reset" : "";
    });
    section.querySelector(".conn").textContent =
      `connects ${client.connects} · reconnects ${client.reconnects} · down ${client.downtimeS().toFixed(1)} s`;
    const log = section.querySelector(".log");
    logged = Math.max(logged, client.logged);
    const first = client.logged - client.log.length + 1;
    log.replaceChildren(...client.log.map((line, i) => {
      const li = document.createElement("li");
      li.append(Object.assign(document.createElement("span"), {className: "n", textContent: `${first + i}.`}), ` ${line}`);
      return li;
    }));
    log.scrollTop = log.scrollHeight;
    chart.update();
  };
  return {section, render};
}

// A transport the browser lacks still gets its panel, saying why (WebTransport exists only
// in a secure context: https, or http on localhost/127.0.0.1 — W3C WebTransport §4, [SecureContext]).
function unavailable(name, why) {
  const section = document.createElement("section");
  section.id = `panel-${name}`;
  section.innerHTML = `<header><h2>${name}</h2><span class="state failed">unavailable</span></header><p class="why"></p>`;
  section.querySelector(".why").textContent = why;
  return section;
}

function missingApi(name) {
  if (name !== "wt" || typeof WebTransport !== "undefined") return null;
  if (!window.isSecureContext) {
    return `WebTransport needs a secure context: open this page as https, or as http://127.0.0.1 or http://localhost (it was opened from ${location.origin}).`;
  }
  return "this browser has no WebTransport.";
}

const pageId = Math.random().toString(36).slice(2, 10);
const clients = {};
let startSeq = 0;  // the hub's newest seq when the page opened
let reportKey = "";  // this server's per-start secret: only its own page may report
const restarts = {};  // each client's retry button, by transport
const retry = retrySettings(location.search);  // rtplay's policies and seed, when it opened the page
const policies = {};  // each reconnecting client's policy (its draws go on across restarts)

async function main() {
  const config = await (await fetch("/page/config", {cache: "no-store"})).json();
  reportKey = config.report_key;
  const container = document.getElementById("panels");
  const renders = [];
  startSeq = config.last || 0;
  for (const [name, channels, start] of TRANSPORTS) {
    const why = missingApi(name);
    if (why !== null) { container.append(unavailable(name, why)); continue; }
    const client = new ClientState(name, channels);
    const policy = name === "sse" ? null : policyFor(retry, name);  // EventSource retries by itself
    if (policy !== null) policies[name] = policy;
    client.start(startSeq);  // a new subscriber: from the hub's newest message on, not a resume
    let stop = null;
    const restart = () => {  // the retry button: a fresh client that resumes from the cursor
      if (stop) stop();
      client.note("retry pressed");
      if (client.state === "failed") client.state = "connecting";
      stop = start(client, config, policy);
    };
    clients[name] = client;
    restarts[name] = restart;
    const {section, render} = panel(client, restart);
    container.append(section);
    renders.push(render);
    stop = start(client, config, policy);
  }
  setInterval(() => renders.forEach((r) => r()), 200);
  setInterval(report, REPORT_INTERVAL_MS);
}

// The page's figures, for the server to show beside rtplay's own clients, and the journal
// entries not yet taken, from which rtplay computes the browser's accounting.
function snapshot() {
  return {page: pageId, agent: navigator.userAgent,
          clients: Object.fromEntries(Object.entries(clients).map(([n, c]) => [n, c.report()]))};
}

let reporting = false;

async function report() {
  if (reporting) return;  // one report in flight: entries are acknowledged in order
  reporting = true;
  try {
    const body = {...snapshot(), start: startSeq, journal: journal.batch()};
    const r = await fetch("/browser/report", {method: "POST",
                                              headers: {"Content-Type": "application/json", "X-Rtplay-Report-Key": reportKey},
                                              body: JSON.stringify(body), cache: "no-store"});
    if (r.ok) journal.ack(body.journal.from + body.journal.entries.length);
  } catch { /* the server is down (a fault): the next report carries the entries again */ }
  finally { reporting = false; }
}

// What a driver (rtplay's `g` key) may do: press the retry button of every failed client
// named, as a user would; returns the names restarted.
function restartFailed(names) {
  return names.filter((n) => clients[n] && clients[n].state === "failed" && (restarts[n](), true));
}

window.rtplay = {clients, snapshot, journal, restartFailed, retry, policies};
main();
