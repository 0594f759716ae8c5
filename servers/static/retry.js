// rtplay's retry policies (rtplay/model/retry.py) in the page, so that the page's clients
// retry on rtplay's schedule: the same policy per transport, and, given the same seed, the
// same jitter draws (rtplay/model/draws.py: mulberry32 streams seeded by FNV-1a of
// "SEED/TRANSPORT"). Then a fault keeps the page and rtplay's clients down for the same time,
// and what each loses on its unreliable channels can be compared figure for figure.
//
// The page reads its settings from its own address: `?seed=S&retry.ws=POLICY&...` (what
// `rtplay --browser` opens); POLICY is the canonical text of rtplay's --retry grammar
// (rtplay/model/retry_spec.py, `str(PolicySpec)`). Without them each transport runs the
// policy rtplay's client of it runs by default, with unseeded draws. The reconnect loop the
// page's clients share (`retrying`) and its error vocabulary end this file.
"use strict";

// What rtplay's clients run when no --retry is given (their `default_policy`); poll keeps
// polling on its 1 s interval through errors, as rtplay's poll client does.
const DEFAULT_POLICIES = {poll: "fixed:1", longpoll: "fixed:10", ws: "socketio", wt: "socketio", rtc: "socketio"};

// An event stream's reconnection time before it sends `retry:` (retry.py DEFAULT_RECONNECTION_S).
const DEFAULT_RECONNECTION_S = 3.0;
// Decorrelated jitter's growth (retry.py DECORRELATED_GROWTH).
const DECORRELATED_GROWTH = 3.0;
const JITTERS = ["none", "full", "equal", "decorrelated"];

// FNV-1a 32-bit over the UTF-8 bytes of "SEED/TRANSPORT" (draws.py stream_seed).
function streamSeed(seed, transport) {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${seed}/${transport}`)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

// mulberry32 (draws.py PortableRandom): every step is exact 32-bit integer arithmetic.
class PortableRandom {
  constructor(state) { this.state = state >>> 0; }
  random() {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(a, b) { return a + (b - a) * this.random(); }  // Python's Random.uniform, same operations
}

const g = (x) => String(Number(x.toPrecision(6)));  // Python's {:g} for the values policies hold

// Each policy answers, after each failed attempt, how long to wait (seconds): retry.py's Backoff.
class Backoff {
  constructor() { this.failures = 0; }
  nextDelay(hint = null) { this.failures++; return this.delayFor(this.failures, hint); }
  reset() { this.failures = 0; }
}

class FixedDelay extends Backoff {
  constructor(delay) { super(); this.delay = delay; }
  delayFor() { return this.delay; }
  describe() { return `fixed ${g(this.delay)}s`; }
}

class Immediate extends Backoff {
  delayFor() { return 0; }
  describe() { return "immediate"; }
}

class EventSourceDelay extends Backoff {
  delayFor(failures, hint) { return hint ?? DEFAULT_RECONNECTION_S; }
  describe() { return `eventsource, ${g(DEFAULT_RECONNECTION_S)} s default`; }
}

// socketio: Socket.IO's Backoff, base ± base*jitter uniformly (retry.py ExponentialBackoff).
class ExponentialBackoff extends Backoff {
  constructor(rng, initial = 1.0, maximum = 5.0, factor = 2.0, jitter = 0.5) {
    super(); Object.assign(this, {rng, initial, maximum, factor, jitter});
  }
  delayFor(failures) {
    let base = Math.min(this.maximum, this.initial * this.factor ** Math.min(failures - 1, 64));
    if (this.jitter) base += (this.rng.random() * 2 - 1) * this.jitter * base;
    return Math.min(this.maximum, Math.max(0.0, base));
  }
  describe() { return `exp ${g(this.initial)}s×${g(this.factor)}≤${g(this.maximum)}s ±${Math.round(this.jitter * 100)}%`; }
}

// exponential with none / full / equal / decorrelated jitter (retry.py Exponential).
class Exponential extends Backoff {
  constructor(rng, p) { super(); this.rng = rng; this.p = p; this.prev = p.base; }
  reset() { super.reset(); this.prev = this.p.base; }
  delayFor(failures) {
    const p = this.p;
    const ceiling = Math.min(p.cap, p.base * p.factor ** Math.min(failures - 1, 64));
    if (p.jitter === "full") return this.rng.uniform(0.0, ceiling);
    if (p.jitter === "equal") return ceiling / 2 + this.rng.uniform(0.0, ceiling / 2);
    if (p.jitter === "decorrelated") {
      this.prev = Math.min(p.cap, this.rng.uniform(p.base, this.prev * DECORRELATED_GROWTH));
      return this.prev;
    }
    return ceiling;
  }
  describe() { return `exp ${this.p.jitter} ${g(this.p.base)}s×${g(this.p.factor)}≤${g(this.p.cap)}s`; }
}

function number(text, what) {
  const n = Number(text);
  if (text === "" || !Number.isFinite(n) || n < 0) throw new Error(`${what} must be a number, got ${JSON.stringify(text)}`);
  return n;
}

// A policy from its canonical text (retry_spec.py PolicySpec.__str__), drawing from `rng`.
function buildPolicy(text, rng) {
  const [name, args = ""] = text.split(/:(.*)/s);
  if (name === "fixed") return new FixedDelay(number(args, "fixed's wait"));
  if (name === "immediate" && !args) return new Immediate();
  if (name === "eventsource" && !args) return new EventSourceDelay();
  if (name === "socketio" && !args) return new ExponentialBackoff(rng);
  if (name === "exponential") {
    const p = {jitter: "none", base: 1.0, cap: 30.0, factor: 2.0};
    for (const item of args ? args.split(",") : []) {
      const [key, value] = item.split("=");
      if (key === "jitter" && JITTERS.includes(value)) p.jitter = value;
      else if (key === "base" || key === "cap" || key === "factor") p[key] = number(value, key);
      else throw new Error(`unknown exponential setting ${JSON.stringify(item)}`);
    }
    return new Exponential(rng, p);
  }
  throw new Error(`unknown retry policy ${JSON.stringify(text)}`);
}

// The page's retry settings, from its address: {seed (its text, or null), policies by transport}.
function retrySettings(search) {
  const params = new URLSearchParams(search);
  const policies = {...DEFAULT_POLICIES};
  for (const name of Object.keys(DEFAULT_POLICIES)) {
    const given = params.get(`retry.${name}`);
    if (given !== null) policies[name] = given;
  }
  return {seed: params.get("seed"), policies};
}

// The policy of `transport` under `settings`: its draws seeded from the run's seed, else at random.
function policyFor(settings, transport) {
  const state = settings.seed === null ? Math.floor(Math.random() * 4294967296) : streamSeed(settings.seed, transport);
  const rng = new PortableRandom(state);
  try {
    return buildPolicy(settings.policies[transport] ?? "socketio", rng);
  } catch (e) {
    console.warn(`${transport}: ${e.message}; using ${DEFAULT_POLICIES[transport]}`);
    return buildPolicy(DEFAULT_POLICIES[transport], rng);
  }
}

// --- the reconnect loop, once for every client the page retries ----------------------------

class StatusError extends Error {
  constructor(status, reason, retryAfter = null) {
    super(`HTTP ${status}${reason ? ": " + reason : ""}`); this.status = status; this.retryAfter = retryAfter;
  }
}

// RFC 9110 §10.2.3, the delay-seconds form only (as rtplay's clients read it).
function retryAfter(response) {
  const value = response.headers.get("Retry-After");
  return value !== null && /^[0-9]+$/.test(value) ? Number(value) : null;
}

async function refused(response) {
  return new StatusError(response.status, await failure(response), retryAfter(response));
}

async function failure(response) {  // the server's reason, readable thanks to CORS on errors
  // Retry-After is readable cross-origin because the server exposes it (Access-Control-Expose-Headers).
  const after = response.headers.get("Retry-After");
  let reason = "";
  try { reason = (await response.json()).error || ""; } catch { /* no JSON body */ }
  return after === null ? reason : `${reason}${reason ? " " : ""}(Retry-After ${after} s)`;
}

// Runs `session(client, ctl)` again and again until stopped, waiting between attempts what
// `policy` decides (a longer Retry-After wins), as rtplay's reconnecting core does. A session
// resolves or throws when its connection ends; it calls ctl.opened() once it delivers.
function retrying(client, session, policy) {
  const ctl = {stopped: false, close: () => {}, opened: () => { policy.reset(); client.opened(); }};
  (async () => {
    while (!ctl.stopped) {
      let reason = "ended", after = null;
      try { await session(client, ctl); } catch (e) {
        reason = e && e.message ? e.message : String(e);
        after = e instanceof StatusError ? e.retryAfter : null;
      }
      ctl.close();
      if (ctl.stopped) return;
      client.down("retrying", reason);
      let delay = policy.nextDelay(), why = policy.describe();
      if (after !== null && after > delay) { delay = after; why = "Retry-After"; }
      client.retryIn(delay, why);
      await new Promise((resume) => setTimeout(resume, delay * 1000));
    }
  })();
  return () => { ctl.stopped = true; ctl.close(); };
}
