/**
 * The typed error raised for an invalid client configuration file.
 *
 * @module
 */

/**
 * An invalid client configuration: names the file and the field at fault.
 *
 * @example
 * ```ts
 * const error = new ConfigError("stun_servers.json", "stun[0]", "expected \"host:port\"");
 * console.log(error.message); // stun_servers.json: stun[0]: expected "host:port"
 * ```
 */
export class ConfigError extends Error {
  /** The file the configuration was read from. */
  readonly file: string;
  /** The field at fault, as a path (`stun[2]`, `turn[0].url`), or `""` for the whole file. */
  readonly field: string;

  /**
   * Creates a configuration error.
   *
   * @example
   * ```ts
   * throw new ConfigError("config.json", "turn[0].username", "must be a string");
   * ```
   */
  constructor(file: string, field: string, reason: string) {
    super(field === "" ? `${file}: ${reason}` : `${file}: ${field}: ${reason}`);
    this.name = "ConfigError";
    this.file = file;
    this.field = field;
  }
}
