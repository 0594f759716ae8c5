// Accounting for the page's clients, the same rules as rtplay's own (rtplay/metrics.py):
// delivered / missing / lost to a reset / duplicates / out of order per channel, latency
// percentiles from a log-bucketed histogram, connects / reconnects / downtime per client.
"use strict";

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

class Channel {
  constructor(name, onNew) {
    this.name = name; this.tracker = new SeqTracker(); this.latency = new Latency(); this.recent = [];
    this.onNew = onNew;
  }
  envelope(env, receivedMs) {
    if (typeof env.seq !== "number" || typeof env.t !== "number") throw new Error("not an envelope");
    if (!this.tracker.see(env.seq)) return;
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

// One transport's client: its channels, state, connection figures and reconnect log.
class ClientState {
  constructor(name, channels) {
    this.name = name;
    this.channels = Object.fromEntries(channels.map((c, i) => [c, new Channel(c, i === 0 ? () => this.arrived() : () => {})]));
    this.events = [];  // [kind, wall ms]: "down" when it leaves open, "back" at the first new message after
    this.state = "connecting"; this.detail = ""; this.failedReason = null;
    this.connects = 0; this.reconnects = 0; this.downSince = performance.now(); this.downMs = 0;
    this.log = []; this.onchange = () => {};
  }
  get primary() { return Object.values(this.channels)[0]; }
  event(kind) {
    this.events.push([kind, Date.now()]);
    if (this.events.length > EVENTS) this.events.shift();
  }
  arrived() {
    if (this.events.length && this.events[this.events.length - 1][0] === "down") this.event("back");
  }
  note(text) {
    this.log.push(`${new Date().toISOString().slice(11, 23)} ${text}`);
    if (this.log.length > LOG_LINES) this.log.shift();
    this.onchange();
  }
  opened() {
    if (this.state === "open") return;
    this.connects++; if (this.connects > 1) this.reconnects++;
    if (this.downSince !== null) { this.downMs += performance.now() - this.downSince; this.downSince = null; }
    this.state = "open"; this.failedReason = null; this.note(this.connects > 1 ? "reconnected" : "open");
  }
  down(state, reason) {  // state: "retrying" | "failed" | "connecting"
    if (this.downSince === null) this.downSince = performance.now();
    if (state === "failed") this.failedReason = reason;
    if (this.state === "open") this.event("down");
    const changed = this.state !== state || this.detail !== reason;
    this.state = state; this.detail = reason;
    if (changed) this.note(`${state}: ${reason}`);
  }
  reset(channel, reset) {
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
