/** tripcap's version, reported by the CLI and by agents when they register. */
export const VERSION = '0.1.0';
