/** Names of haproxy.cfg sections that refer to each other (frontends to backends, trackers to checkers, tables to peers). */

/** Name of the `peers` section: stick tables sync across an HA pair and survive every reload. */
export const PEERS_SECTION = "imaging_lb";
/** A service's frontend. */
export const frontendName = (service: string) => `fe_${service}`;
/** A service's backend, or the backend of one of its path routes. */
export const backendName = (service: string, route?: string) => (route ? `be_${service}_${route}` : `be_${service}`);
/** The fallback backend of a service with a sorry server: chosen while its backend has no usable server, never stored. */
export const sorryBackendName = (service: string) => `sorry_${service}`;
/** The check-only backend whose servers a `source`-address backend tracks (checks from the node's own address). */
export const checkBackendName = (backend: string) => `chk_${backend}`;
