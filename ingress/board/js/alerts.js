// Alerts and personal notifications as they arrive (domain.md §8), newest
// first; a notification is acknowledged once it has been shown.

import { $, el, time } from './dom.js';

const KEEP = 50;

export class Alerts {
  constructor(live) {
    this.live = live;
    this.list = $('#alerts');
    this.count = $('#alert-count');
    this.total = 0;
  }

  onEvent(frame) {
    const data = frame.data || {};
    if (frame.event_type !== 'alert' && frame.event_type !== 'notification') return;
    this.total += 1;
    this.count.textContent = String(this.total);
    const item = el(
      'li',
      { class: `alert level-${data.level || 'info'}`, 'data-kind': data.kind || frame.event_type },
      el('strong', { text: data.title || data.kind || 'Aviso' }),
      el('div', { text: data.content || '' }),
      el('small', { text: `${time(frame.timestamp)} · ${frame.event_type === 'alert' ? data.kind : 'notificación'}` }),
    );
    this.list.prepend(item);
    while (this.list.children.length > KEEP) this.list.lastElementChild.remove();
    if (frame.event_type === 'notification' && data.notification_id) {
      this.live.send('ack', { notification_id: data.notification_id });
    }
  }
}
