// The page's own view of its clients (what its panels show): delivered / missing / lost to a
// reset / duplicates / out of order per channel, latency percentiles from a log-bucketed
// histogram, connects / reconnects / downtime per client. What rtplay reports for the browser
// is not taken from these counts: the page also writes a journal of what it received (seq
// runs per channel, connection changes, resets, live markers) and rtplay computes every
// figure from it with its own accounting model (rtplay/model/accounting.py).
"use strict";

// Journal entries held while the server cannot take them (an outage): arrivals are
// coalesced into runs, so a healthy page adds ~4 per client per second; 20,000 covers more
// than a minute of 20 % loss on both live-only channels. Past it the oldest are dropped and
// the server counts the gap (rtplay then says the browser's figures are incomplete).
const MAX_UNSENT_ENTRIES = 20000;
// Entries per report: ~40 bytes each, so 1,000 stay well under the server's 64 KiB limit.
const MAX_ENTRIES_PER_REPORT = 1000;

// Missing ranges tracked per channel; beyond it the oldest is written off (still counted).
const MAX_TRACKED_GAPS = 4096;
// Reconnect log lines kept per client: enough to read a fault's story, bounded for a long run.
const LOG_LINES = 50;
// State changes kept per client with their wall-clock time, for recovery figures: a fault
// that takes the server down also stops the page's reports, so the page times them itself.
const EVENTS = 32;
// (seq, latency) of the newest arrivals per channel: the panel's "last", and what a test reads.
const RECENT = 64;
// Histogram buckets grow by 1 %: percentiles within 1 % in fixed memory (as rtplay's).
const BUCKET_GROWTH = Math.log(1.01);

class SeqTracker {
  constructor() {
    this.highest = 0; this.delivered = 0; this.duplicates = 0; this.outOfOrder = 0;
    this.lostToReset = 0; this.writtenOff = 0; this.gaps = [];  // sorted [start, end] pairs
  }
  get missing() { return this.gaps.reduce((n, [s, e]) => n + e - s + 1, this.writtenOff); }
  see(seq) {  // true when new
    if (seq > this.highest) {
      if (seq > this.highest + 1) this.addGap(this.highest + 1, seq - 1);
      this.highest = seq; this.delivered++; return true;
    }
    const i = this.gaps.findIndex(([s, e]) => s <= seq && seq <= e);
    if (i < 0) { this.duplicates++; return false; }
    const [s, e] = this.gaps[i];
    const parts = [];
    if (s < seq) parts.push([s, seq - 1]);
    if (seq < e) parts.push([seq + 1, e]);
    this.gaps.splice(i, 1, ...parts);
    this.delivered++; this.outOfOrder++; return true;
  }
  skipTo(seq) { this.highest = Math.max(this.highest, seq); }  // never sent on this channel
  reset(first) {  // the server says seqs before `first` are gone for good
    let lost = 0;
    if (first - 1 > this.highest) { lost += first - 1 - this.highest; this.highest = first - 1; }
    while (this.gaps.length && this.gaps[0][0] < first) {
      const [s, e] = this.gaps[0];
      if (e < first) { lost += e - s + 1; this.gaps.shift(); } else { lost += first - s; this.gaps[0][0] = first; }
    }
    this.lostToReset += lost; return lost;
  }
  addGap(s, e) {
    this.gaps.push([s, e]);
    if (this.gaps.length > MAX_TRACKED_GAPS) { const [a, b] = this.gaps.shift(); this.writtenOff += b - a + 1; }
  }
}

// What the page received, in order, for rtplay to account: [transport, kind, ...]. Kinds:
// start S (cursors begin after S), seq CH LO HI (LO..HI arrived in this order), up MS,
// down MS P and failed MS P (P: the newest seq the page had seen anywhere: the hub's last
// seq then, to within one message), live CH FIRST, reset CH FIRST.
class Journal {
  constructor() {
    this.from = 0;       // index of entries[0] in the whole journal
    this.entries = [];  // entries that went out in a report leave `runs`: never extended after
    this.runs = new Map();  // "transport/channel" -> the entry of its open run
  }
  add(entry) {
    this.entries.push(entry);
    if (this.entries.length > MAX_UNSENT_ENTRIES) { this.entries.shift(); this.from++; }
  }
  event(transport, kind, ...args) {  // a run never spans one of its client's events
    for (const key of [...this.runs.keys()]) if (key.startsWith(transport + "/")) this.runs.delete(key);
    this.add([transport, kind, ...args]);
  }
  arrival(transport, channel, seq) {
    const key = `${transport}/${channel}`, run = this.runs.get(key);
    if (run && run[4] + 1 === seq) { run[4] = seq; return; }
    const entry = [transport, "seq", channel, seq, seq];
    this.add(entry); this.runs.set(key, entry);
  }
  batch() {  // what the next report carries; its entries are sealed from now on
    const entries = this.entries.slice(0, MAX_ENTRIES_PER_REPORT);
    for (const [key, run] of [...this.runs]) if (entries.includes(run)) this.runs.delete(key);
    return {from: this.from, entries};
  }
  ack(upto) {  // the server has every entry before index `upto`
    const n = Math.max(0, upto - this.from);
    this.entries.splice(0, n); this.from += n;
  }
}

const journal = new Journal();

class Latency {
  constructor() { this.buckets = new Map(); this.count = 0; this.max = null; }
  add(ms) {
    ms = Math.max(0, ms);
    const b = Math.floor(Math.log1p(ms) / BUCKET_GROWTH);
    this.buckets.set(b, (this.buckets.get(b) || 0) + 1);
    this.count++; this.max = this.max === null ? ms : Math.max(this.max, ms);
  }
  percentile(p) {
    if (!this.count) return null;
    const rank = Math.ceil(p / 100 * this.count);
    let seen = 0;
    for (const b of [...this.buckets.keys()].sort((x, y) => x - y)) {
      seen += this.buckets.get(b);
      if (seen >= rank) return Math.min(Math.expm1((b + 0.5) * BUCKET_GROWTH), this.max);
    }
    return this.max;
  }
  summary() {
    const r = (v) => v === null ? null : Math.round(v * 1000) / 1000;
    return {p50: r(this.percentile(50)), p95: r(this.percentile(95)), p99: r(this.percentile(99)), max: r(this.max)};
  }
}

// (wall ms, latency ms) and arrivals per second kept for a panel's chart: two minutes at one
// point per 250 ms (the chart's span), whatever the rate.
const CHART_POINTS = 480;
const CHART_STEP_MS = 250;

class Channel {
  constructor(client, name, onNew) {
    this.client = client; this.name = name; this.tracker = new SeqTracker(); this.latency = new Latency(); this.recent = [];
    this.onNew = onNew;
    this.window = null;  // [step start ms, worst latency, arrivals] of the chart point being filled
    this.points = [];    // [ms, worst latency or null, arrivals/s]
  }
  chartPoint(at, latency) {
    const step = Math.floor(at / CHART_STEP_MS) * CHART_STEP_MS;
    if (this.window && this.window[0] !== step) this.flushPoint();
    if (!this.window) this.window = [step, null, 0];
    if (latency !== null) { this.window[1] = Math.max(this.window[1] ?? 0, latency); this.window[2]++; }
  }
  flushPoint() {
    if (!this.window) return;
    const [at, worst, n] = this.window;
    this.points.push([at, worst, n * 1000 / CHART_STEP_MS]);
    if (this.points.length > CHART_POINTS) this.points.shift();
    this.window = null;
  }
  envelope(env, receivedMs) {
    if (typeof env.seq !== "number" || typeof env.t !== "number") throw new Error("not an envelope");
    journal.arrival(this.client.name, this.name, env.seq);
    if (!this.tracker.see(env.seq)) return;
    this.chartPoint(receivedMs, receivedMs - env.t);
    this.onNew();
    this.latency.add(receivedMs - env.t);
    this.recent.push([env.seq, receivedMs - env.t]);
    if (this.recent.length > RECENT) this.recent.shift();
  }
  report() {
    const t = this.tracker;
    return {delivered: t.delivered, missing: t.missing, highest: t.highest, lost_to_reset: t.lostToReset,
            duplicates: t.duplicates, out_of_order: t.outOfOrder, latency_ms: this.latency.summary()};
  }
}

const allClients = [];

// The newest seq this page has seen on any channel: the hub's last seq, to within a message
// (the page cannot ask the server while a fault is taking it down).
function newestSeen() {
  let n = 0;
  for (const c of allClients) for (const ch of Object.values(c.channels)) n = Math.max(n, ch.tracker.highest);
  return n;
}

// One transport's client: its channels, state, connection figures and reconnect log.
class ClientState {
  constructor(name, channels) {
    this.name = name;
    this.channels = Object.fromEntries(channels.map((c, i) => [c, new Channel(this, c, i === 0 ? () => this.arrived() : () => {})]));
    this.marks = [];  // [wall ms, "down" | "up"] for the chart's bands and reconnect markers
    this.resent = 0;
    this.events = [];  // [kind, wall ms]: "down" when it leaves open, "back" at the first new message after
    this.state = "connecting"; this.detail = ""; this.failedReason = null;
    this.connects = 0; this.reconnects = 0; this.downSince = performance.now(); this.downMs = 0;
    this.log = []; this.logged = 0; this.onchange = () => {};
    allClients.push(this);
  }
  get primary() { return Object.values(this.channels)[0]; }
  start(seq) {  // a fresh page is a new subscriber: it starts after the hub's newest message
    journal.event(this.name, "start", seq);
    for (const ch of Object.values(this.channels)) ch.tracker.skipTo(seq);
  }
  event(kind) {
    this.events.push([kind, Date.now()]);
    if (this.events.length > EVENTS) this.events.shift();
  }
  mark(kind) {
    this.marks.push([Date.now(), kind]);
    if (this.marks.length > EVENTS) this.marks.shift();
  }
  arrived() {
    if (this.events.length && this.events[this.events.length - 1][0] === "down") this.event("back");
  }
  note(text) {
    this.logged++;
    this.log.push(`${new Date().toISOString().slice(11, 23)} ${text}`);
    if (this.log.length > LOG_LINES) this.log.shift();
    this.onchange();
  }
  opened() {
    if (this.state === "open") return;
    this.connects++; if (this.connects > 1) this.reconnects++;
    if (this.downSince !== null) { this.downMs += performance.now() - this.downSince; this.downSince = null; }
    journal.event(this.name, "up", Date.now());
    this.mark("up");
    this.state = "open"; this.failedReason = null; this.note(this.connects > 1 ? "reconnected" : "open");
  }
  down(state, reason) {  // state: "retrying" | "failed" | "connecting"
    if (this.downSince === null) this.downSince = performance.now();
    if (state === "failed") this.failedReason = reason;
    if (this.state === "open") { this.event("down"); this.mark("down"); }
    if (this.state === "open" || (state === "failed" && this.state !== "failed")) {
      journal.event(this.name, state === "failed" ? "failed" : "down", Date.now(), newestSeen());
    }
    const changed = this.state !== state || this.detail !== reason;
    this.state = state; this.detail = reason;
    if (changed) this.note(`${state}: ${reason}`);
  }
  retryIn(seconds, policy) {  // the retry decision, as rtplay's panes show theirs
    this.note(`next attempt in ${seconds.toFixed(2)} s (${policy})`);
  }
  live(channel, first) {  // a live-only channel's new session sends seqs from `first` on
    journal.event(this.name, "live", channel, first);
    this.channels[channel].tracker.skipTo(first - 1);
  }
  reset(channel, reset) {
    journal.event(this.name, "reset", channel, reset.first);
    const lost = this.channels[channel].tracker.reset(reset.first);
    this.note(`reset: ${lost} messages gone (resumed after ${reset.since}, server has ${reset.first}+)`);
  }
  downtimeS() {
    const open = this.downSince === null ? 0 : performance.now() - this.downSince;
    return Math.round((this.downMs + open)) / 1000;
  }
  report() {
    const channels = Object.fromEntries(Object.entries(this.channels).map(([n, c]) => [n, c.report()]));
    const out = {state: this.state, connects: this.connects, reconnects: this.reconnects,
                 downtime_s: this.downtimeS(), channels, log: this.log.slice(-10), events: this.events};
    if (this.failedReason !== null) out.failed_reason = this.failedReason;
    return out;
  }
}
