// The board's entry point: log in, learn who the caller is, then wire the
// map, the task list, dispatch, alerts and (nivel 3) the operators' view
// to the API and the live feed.

import { $, PRIORIDADES, uuid } from './dom.js';
import { Api } from './api.js';
import { Live } from './live.js';
import { CityMap } from './map.js';
import { TaskList } from './tasks.js';
import { Dispatch } from './dispatch.js';
import { Alerts } from './alerts.js';
import { Ops } from './ops.js';

// The whole seeded area fits in this circle; the API caps `limit` at 2000.
const MAP_CENTER = { lat: -34.616, lng: -58.433 };
const MAP_RADIUS_M = 16000;
const MAP_LIMIT = 2000;
const MAP_WAIT_S = 15;
// Events kept while a snapshot loads; past it, the snapshot is taken again.
const HELD_MAX = 5000;
// A token is renewed at this share of its lifetime, before the feed closes it.
const RENEW_AT = 0.8;

const FAREWELL_KEY = 'gad.board.farewell';

const api = new Api();
let session = null;

// Lets a browser test tell a live update from a reload.
document.documentElement.dataset.loadId = uuid();

async function boot() {
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  api.onUnauthorized = () => session && endSession('Su sesión terminó; ingrese de nuevo.');
  const farewell = sessionStorage.getItem(FAREWELL_KEY) || '';
  sessionStorage.removeItem(FAREWELL_KEY);
  if (!api.token) return showLogin(farewell);
  try {
    await begin(null);
  } catch {
    api.setToken(null);
    showLogin();
  }
}

function showLogin(message = '') {
  $('#board').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = message;
  $('#login-email').focus();
}

async function login(event) {
  event.preventDefault();
  const button = $('#login-submit');
  button.disabled = true;
  $('#login-error').textContent = '';
  try {
    const answer = await api.login($('#login-email').value.trim(), $('#login-password').value);
    $('#login-password').value = '';
    await begin(answer.expires_in);
  } catch (e) {
    $('#login-error').textContent =
      e.code === 'invalid_credentials' ? 'Correo o contraseña incorrectos.' : `No se pudo ingresar: ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

async function begin(expiresIn) {
  const [config, me] = await Promise.all([fetch('config.json').then((r) => r.json()), api.request('GET', '/api/v1/users/me')]);
  const caller = { id: me.id, nivel: me.nivel, name: `${me.nombre} ${me.apellido}`.trim() };
  $('#login').hidden = true;
  $('#board').hidden = false;
  $('#whoami').textContent = `${caller.name} · nivel ${caller.nivel}`;
  document.body.dataset.nivel = caller.nivel;

  const board = $('#board');
  const map = new CityMap($('#map'));
  const tasks = new TaskList(api, map, caller);
  // Events that arrive while a snapshot loads wait for it, then apply in
  // order on top of it: the feed opens first, so nothing falls in between.
  let loading = null;
  let overflowed = false;
  const held = [];
  const hold = (frame) => {
    if (held.length < HELD_MAX) held.push(frame);
    else overflowed = true;
  };
  const apply = (frame) => {
    tasks.onEvent(frame);
    alerts.onEvent(frame);
    units(map, frame);
  };
  const reload = async () => {
    if (loading) return loading;
    // The feed may be live before the snapshot is in: say which is which.
    board.dataset.ready = 'false';
    loading = Promise.all([loadMap(map, caller), tasks.load()]);
    try {
      await loading;
      board.dataset.ready = 'true';
    } finally {
      loading = null;
      for (const frame of held.splice(0)) apply(frame);
    }
    // More changed during the load than was kept: the snapshot is stale.
    if (overflowed) {
      overflowed = false;
      await reload();
    }
  };
  const live = new Live(config.ws_url, () => api.token, {
    onEvent: (frame) => (loading ? hold(frame) : apply(frame)),
    onState: (state, detail) => liveState(state, detail),
    onResync: () => {
      // Counted where a test (or a curious operator) can read it.
      const root = document.documentElement;
      root.dataset.resyncs = String(Number(root.dataset.resyncs || 0) + 1);
      reload().catch((e) => ($('#map-note').textContent = `No se pudo recargar: ${e.message}`));
    },
    onRevoked: () => endSession('Su sesión fue cerrada; ingrese de nuevo.'),
  });
  const alerts = new Alerts(live);
  new Dispatch(api, map, caller);
  const ops = caller.nivel >= 3 ? new Ops(api) : null;
  session = { live, ops, renew: null };
  setupTabs(ops);

  if (caller.nivel < 2) {
    // Its own unit's topic needs the unit's id first.
    await ownUnit(map, caller).catch((e) => endSession(`No se pudo cargar el tablero: ${e.message}`));
    if (!session) return;
  }
  const own = caller.unit ? [`efectivos.${caller.unit.efectivo_id}`] : [];
  live.start(caller.nivel >= 2 ? ['tasks', 'efectivos', 'alerts'] : own);
  try {
    await reload();
  } catch (e) {
    // A half-built board must not stay behind: leave through a reload.
    endSession(`No se pudo cargar el tablero: ${e.message}`);
    return;
  }
  scheduleRenew(expiresIn);
}

// Efectivo events move and recolour dots.
function units(map, frame) {
  const data = frame.data || {};
  if (frame.event_type === 'efectivo_status_changed') map.setDisponibilidad(data.efectivo_id, data.disponibilidad);
  if (frame.event_type === 'efectivo_location_update') map.upsertUnit(data);
}

async function loadMap(map, caller) {
  map.clearAll();
  if (caller.nivel >= 2) {
    const view = await api.request(
      'GET',
      `/api/v1/geo/map/view?center_lat=${MAP_CENTER.lat}&center_lng=${MAP_CENTER.lng}&radius_m=${MAP_RADIUS_M}&limit=${MAP_LIMIT}`,
      { wait: MAP_WAIT_S },
    );
    for (const e of view.efectivos) map.upsertUnit(e);
    for (const t of view.tareas) map.upsertTask({ ...t, prioridad: t.prioridad ?? PRIORIDAD_OF[t.priority] });
    const cut = view.truncated.efectivos || view.truncated.tareas;
    $('#map-note').textContent = cut ? `Se muestran los ${MAP_LIMIT} más cercanos al centro.` : '';
    return;
  }
  // nivel 1: its own unit (drawn by ownUnit); its tasks come with the task list.
  if (caller.unit) map.upsertUnit(caller.unit);
}

// nivel 1's own efectivo, if it has one.
async function ownUnit(map, caller) {
  try {
    const me = await api.request('GET', '/api/v1/efectivos/me');
    caller.unit = { efectivo_id: me.id, lat: me.lat, lng: me.lng, disponibilidad: me.disponibilidad, codigo_interno: me.codigo_interno };
  } catch (e) {
    if (e.status !== 404) throw e;
  }
}

const PRIORIDAD_OF = Object.fromEntries(Object.entries(PRIORIDADES).map(([n, label]) => [label, Number(n)]));

function liveState(state, detail) {
  const node = $('#live-status');
  node.dataset.state = state;
  node.textContent = { live: 'en vivo', connecting: 'conectando…', reconnecting: 'reconectando…', closed: 'desconectado' }[state] || state;
  node.title = detail || '';
}

function scheduleRenew(expiresIn) {
  if (!session) return;
  clearTimeout(session.renew);
  const seconds = expiresIn ?? secondsLeft(api.token);
  if (!seconds) return;
  session.renew = setTimeout(async () => {
    try {
      const answer = await api.refresh();
      session?.live.renew(answer.access_token);
      scheduleRenew(answer.expires_in);
    } catch {
      endSession('Su sesión venció; ingrese de nuevo.');
    }
  }, seconds * RENEW_AT * 1000);
}

// The `exp` claim of a token the page kept from an earlier load.
function secondsLeft(token) {
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return Math.max(0, claims.exp - Date.now() / 1000);
  } catch {
    return null;
  }
}

function setupTabs(ops) {
  const tabs = [...document.querySelectorAll('.tab')];
  $('#tab-ops').hidden = !ops;
  for (const tab of tabs) {
    tab.onclick = () => {
      for (const t of tabs) {
        t.classList.toggle('active', t === tab);
        $(`#${t.dataset.view}`).hidden = t !== tab;
      }
      ops?.show(tab.id === 'tab-ops');
    };
  }
}

async function logout() {
  session?.live.stop();
  await api.logout().catch(() => {});
  endSession('');
}

// Leaves through a reload, so no listener or timer of this session survives
// into the next login; the message waits in sessionStorage.
function endSession(message) {
  if (!session) return;
  clearTimeout(session.renew);
  session.live.stop();
  session.ops?.show(false);
  session = null;
  api.setToken(null);
  sessionStorage.setItem(FAREWELL_KEY, message);
  location.reload();
}

boot();
