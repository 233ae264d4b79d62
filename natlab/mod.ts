/**
 * The NAT lab: real NATs built with nftables in Linux network namespaces, a probe that proves
 * their behaviour, and the matrix that runs the real server and clients through every pair.
 *
 * @example
 * ```ts
 * import { NatLab } from "./mod.ts";
 * await using lab = await NatLab.create({
 *   hosts: [{ name: "a", kind: "symmetric" }, { name: "b", kind: "full-cone", lossPercent: 5 }],
 * });
 * console.log(lab.host("a").publicAddress); // "198.18.0.2"
 * ```
 *
 * @module
 */
export * from "./command.ts";
export * from "./delay_holder.ts";
export * from "./environment.ts";
export * from "./json_lines.ts";
export * from "./lab.ts";
export * from "./nat_kind.ts";
export * from "./probe_process.ts";
export * from "./lab_process.ts";
export * from "./matrix.ts";
export * from "./matrix_table.ts";
export * from "./port_mapping.ts";
