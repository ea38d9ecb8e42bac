// The live feed (domain.md §8): one WebSocket to the broadcaster, topics
// resumed from their last seq after a reconnect, duplicates dropped by
// message_id, full-jitter backoff, and the heartbeat answered.

const SILENCE_MS = 35000;
const BACKOFF_MIN_S = 0.5;
const BACKOFF_MAX_S = 20;
const OVER_CAPACITY_MIN_S = 5;
const SEEN_LIMIT = 5000;
// Closes after which reconnecting with the same token cannot help.
const REVOKED = new Set([1008, 4003]);

export class Live {
  // handlers: onEvent(frame), onState(state, detail), onResync(topic), onRevoked(reason)
  constructor(url, tokenOf, handlers) {
    this.url = url;
    this.tokenOf = tokenOf;
    this.handlers = handlers;
    this.wanted = new Set();
    this.lastSeq = new Map();
    this.seen = new Set();
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.silence = null;
    this.retry = null;
    this.connectedWith = null;
  }

  start(topics) {
    for (const t of topics) this.wanted.add(t);
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    clearTimeout(this.silence);
    if (this.ws) this.ws.close(1000, 'logout');
  }

  // A refreshed token, sent before the old one expires (§8 token expiry).
  renew(token) {
    this.send('auth', { token });
  }

  connect() {
    const token = this.tokenOf();
    if (!token || this.stopped) return;
    this.handlers.onState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const base = this.url.startsWith('/')
      ? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${this.url}`
      : this.url;
    const ws = new WebSocket(`${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);
    this.ws = ws;
    this.connectedWith = token;
    ws.onmessage = (message) => this.receive(message.data);
    ws.onclose = (close) => this.closed(ws, close);
    this.heard();
  }

  send(eventType, data) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ event_type: eventType, data }));
    }
  }

  heard() {
    clearTimeout(this.silence);
    this.silence = setTimeout(() => this.dead(), SILENCE_MS);
  }

  // A silent link may never finish a closing handshake: forget it and
  // reconnect now, as if it had closed.
  dead() {
    const ws = this.ws;
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    try {
      ws.close(4001, 'silence');
    } catch {
      // Already closing.
    }
    this.closed(ws, { code: 4001, reason: 'heartbeat_timeout' });
  }

  receive(text) {
    this.heard();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const data = frame.data || {};
    switch (frame.event_type) {
      case 'connection_ack':
        for (const topic of data.subscribed || []) this.wanted.add(topic);
        this.attempt = 0;
        // Renewed while connecting: this socket still holds the old token.
        if (this.tokenOf() !== this.connectedWith) this.send('auth', { token: this.tokenOf() });
        this.handlers.onState('live');
        this.rejoin();
        return;
      case 'subscribed':
        for (const { topic, seq } of data.topics || []) this.advance(topic, seq);
        return;
      case 'ping':
        this.send('pong', { server_time: data.server_time });
        return;
      case 'unsubscribed':
        return;
      case 'error':
        if (data.error === 'resync_required' && data.topic) {
          // Too far behind: reload over HTTP, then follow from the head.
          this.lastSeq.delete(data.topic);
          this.handlers.onResync(data.topic);
          this.send('subscribe', { topics: [data.topic] });
        }
        return;
      default:
        break;
    }
    if (frame.message_id) {
      if (this.seen.has(frame.message_id)) return;
      this.seen.add(frame.message_id);
      if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value);
    }
    if (frame.topic) this.advance(frame.topic, frame.seq);
    this.handlers.onEvent(frame);
  }

  advance(topic, seq) {
    if (typeof seq !== 'number') return;
    if (!(this.lastSeq.get(topic) >= seq)) this.lastSeq.set(topic, seq);
  }

  // After (re)connecting: resume what we followed, subscribe the rest.
  rejoin() {
    const fresh = [];
    for (const topic of this.wanted) {
      if (this.lastSeq.has(topic)) this.send('resume', { topic, last_seq: this.lastSeq.get(topic) });
      else fresh.push(topic);
    }
    if (fresh.length) this.send('subscribe', { topics: fresh });
  }

  closed(ws, close) {
    if (ws !== this.ws) return;
    clearTimeout(this.silence);
    this.ws = null;
    if (this.stopped) {
      this.handlers.onState('closed');
      return;
    }
    if (REVOKED.has(close.code)) {
      this.handlers.onState('closed', close.reason);
      this.handlers.onRevoked(close.reason || `close ${close.code}`);
      return;
    }
    const ceiling = Math.min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** this.attempt);
    let delay = Math.random() * ceiling;
    if (close.code === 1013) delay = Math.max(OVER_CAPACITY_MIN_S, delay);
    this.attempt += 1;
    this.handlers.onState('reconnecting', close.reason);
    this.retry = setTimeout(() => this.connect(), delay * 1000);
  }
}
