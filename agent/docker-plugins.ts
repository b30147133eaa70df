// The daemon's Docker front door: one unix socket per plugin in the plugin
// directory dockerd searches (/run/docker/plugins), each mode 0600.
import { rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Controller } from '../core/controller.js';
import { servePlugin } from '../plugins/docker/http.js';
import { dockerPlugins } from '../plugins/docker/index.js';

export const DOCKER_PLUGIN_DIR = '/run/docker/plugins';

export interface DockerPluginServers {
  sockets: string[];
  close(): Promise<void>;
}

export async function serveDockerPlugins(ctl: Controller, dir = DOCKER_PLUGIN_DIR): Promise<DockerPluginServers> {
  const servers: { path: string; server: Server }[] = [];
  const close = async (): Promise<void> => {
    for (const { path, server } of servers.splice(0)) {
      const closed = new Promise((resolve) => server.close(resolve));
      // dockerd keeps its connections open; they must not hold the daemon up.
      server.closeAllConnections();
      await closed;
      rmSync(path, { force: true });
    }
  };
  try {
    for (const [name, handlers] of Object.entries(dockerPlugins(ctl))) {
      const path = join(dir, `${name}.sock`);
      servers.push({ path, server: await servePlugin(path, handlers) });
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { sockets: servers.map((s) => s.path), close };
}
