package tileattn.cli;

/** The attention methods the CLI offers. */
enum Method {
    dense, sta, vsa
}
