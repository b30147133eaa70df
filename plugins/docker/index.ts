// strand's Docker plugins by socket name: what `strand daemon` serves under
// /run/docker/plugins. strand-overlay and strand-ipam share the links from
// engines' overlay networks to the cluster's networks and pools.
import type { Controller } from '../../core/controller.js';
import type { Handlers } from './http.js';
import { ipamDriverHandlers } from './ipam-driver.js';
import { networkDriverHandlers } from './network-driver.js';
import { overlayDriverHandlers } from './overlay-driver.js';
import { OverlayLinks } from './overlay-links.js';

export function dockerPlugins(ctl: Controller): Record<string, Handlers> {
  const overlays = new OverlayLinks(ctl.store, ctl.hostId);
  return {
    'strand-bridge': networkDriverHandlers(ctl, 'bridge'),
    'strand-macvlan': networkDriverHandlers(ctl, 'macvlan'),
    'strand-overlay': overlayDriverHandlers(ctl, overlays),
    'strand-ipam': ipamDriverHandlers(ctl.ipamService(), overlays),
  };
}
