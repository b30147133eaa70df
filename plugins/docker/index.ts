// strand's Docker plugins by socket name: what `strand daemon` serves under
// /run/docker/plugins. strand-overlay joins when the overlay driver does.
import type { Controller } from '../../core/controller.js';
import type { Handlers } from './http.js';
import { ipamDriverHandlers } from './ipam-driver.js';
import { networkDriverHandlers } from './network-driver.js';

export function dockerPlugins(ctl: Controller): Record<string, Handlers> {
  return {
    'strand-bridge': networkDriverHandlers(ctl, 'bridge'),
    'strand-macvlan': networkDriverHandlers(ctl, 'macvlan'),
    'strand-ipam': ipamDriverHandlers(ctl.ipam),
  };
}
