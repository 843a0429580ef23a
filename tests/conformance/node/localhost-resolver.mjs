// Loaded with `node --import`: resolve every `*.localhost` name to loopback, as RFC 6761
// resolvers (systemd-resolved, curl, browsers) do and glibc with a plain /etc/hosts does not.
// Only the name lookup changes; the clients are untouched.
import dns from "node:dns";

const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  const name = typeof host === "string" && host.endsWith(".localhost") ? "localhost" : host;
  return lookup.call(this, name, options, callback);
};
