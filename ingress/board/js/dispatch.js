// Emergency dispatch from the map (domain.md §4): arm the button, click a
// point, and the nearest free unit is assigned; the board then shows the
// unit and its distance. The unit's colour and the new task arrive over
// the live feed like any other change.

import { $, el, clear } from './dom.js';

const DISPATCH_WAIT_S = 15;

export class Dispatch {
  constructor(api, map, caller) {
    this.api = api;
    this.map = map;
    this.caller = caller;
    this.button = $('#emergency-toggle');
    this.result = $('#dispatch-result');
    this.armed = false;
    this.busy = false;
    this.button.addEventListener('click', () => this.arm(!this.armed));
    map.node.addEventListener('click', (e) => this.clicked(e));
    document.addEventListener('keydown', (e) => e.key === 'Escape' && this.arm(false));
  }

  arm(on) {
    this.armed = on && !this.busy;
    this.button.setAttribute('aria-pressed', String(this.armed));
    this.map.node.classList.toggle('armed', this.armed);
    $('#map-note').textContent = this.armed ? 'Haga clic en el lugar de la emergencia (Esc cancela).' : '';
  }

  async clicked(event) {
    if (!this.armed || this.busy) return;
    const at = this.map.pointAt(event);
    if (!at) return;
    this.arm(false);
    this.busy = true;
    this.map.markDrop(at.lat, at.lng);
    this.show('pending', `Despachando a ${at.lat.toFixed(5)}, ${at.lng.toFixed(5)}…`);
    try {
      const answer = await this.api.request('POST', '/api/v1/tasks/emergency', {
        body: {
          lat: round(at.lat),
          lng: round(at.lng),
          reporter: { nombre: this.caller.name.slice(0, 100) },
          descripcion: `Marcada en el tablero por ${this.caller.name}`,
        },
        wait: DISPATCH_WAIT_S,
        idempotent: true,
      });
      this.map.highlightUnit(answer.assigned_efectivo_id);
      this.show(
        'assigned',
        el('strong', { text: answer.codigo }),
        ` asignada a ${answer.efectivo_codigo} a ${Math.round(answer.distance_m)} m`,
      );
      this.result.dataset.efectivoId = answer.assigned_efectivo_id;
      this.result.dataset.tareaId = answer.tarea_id;
    } catch (e) {
      this.show('failed', e.code === 'no_efectivo_available' ? 'Ninguna unidad disponible con posición conocida.' : `No se pudo despachar: ${e.message}`);
    } finally {
      this.busy = false;
    }
  }

  show(state, ...content) {
    clear(this.result).append(...content);
    this.result.hidden = false;
    this.result.dataset.state = state;
    delete this.result.dataset.efectivoId;
    delete this.result.dataset.tareaId;
    this.result.classList.toggle('failed', state === 'failed');
  }
}

// Six decimals are ~10 cm: more would only make the request longer.
const round = (v) => Math.round(v * 1e6) / 1e6;
