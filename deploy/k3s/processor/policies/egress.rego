# The seed policy (manufacturing.smart) plus an opt-in export allowlist.
#
# Select it with `policy.decision: data.manufacturing.egress`. With an empty
# `data.manufacturing.export_allowlist` (the shipped default) every verdict equals
# manufacturing.smart's; each allowlist entry opens exactly one narrow way out:
#
#   {"name": "aggregates-to-cloud",          # shown in logs and tests
#    "host": "ingest.cloud.example.com",     # exact, or "*.example.com"
#    "port": 8883,                           # optional
#    "protocols": ["mqtt"],                  # required: mqtt, http, https, tcp, dns
#    "topics": ["plant/+/aggregates/#"],     # MQTT: publish/subscribe topics allowed
#    "methods": ["POST"],                    # HTTP: optional method list
#    "paths": ["/v1/aggregates/"]}           # HTTP: optional path prefixes
#
# A CONNECT tunnel (https/tcp) hides paths and methods, so it is allowed only by an entry
# that lists its protocol and restricts neither. A DNS lookup of an external name (protocol
# dns, operation lookup; sent by transparent interception) is allowed by an entry for that
# name that lists "dns".
package manufacturing.egress

import data.manufacturing.smart
import rego.v1

default allow := false

allow if smart.allow

allow if allowlisted

deny contains msg if {
	smart.deny
	not allowlisted
	# object.get: a seed-shaped input (no protocol/operation) must still carry its reason.
	msg := sprintf("%s %s to %s is an export and no allowlist entry permits it", [
		object.get(input, "protocol", "traffic"),
		object.get(input, "operation", "sent"),
		object.get(input, "destination", "outside the site"),
	])
}

# The allowlist entry names that permit this input (for logs and tests).
allowed_by contains entry.name if {
	some entry in data.manufacturing.export_allowlist
	entry_permits(entry)
}

allowlisted if count(allowed_by) > 0

entry_permits(entry) if {
	host_matches(entry.host, input.target.host)
	port_matches(entry)
	input.protocol in entry.protocols
	operation_permitted(entry)
}

# Host names compare case-insensitively (DNS does).
host_matches(pattern, host) if lower(pattern) == lower(host)

host_matches(pattern, host) if {
	startswith(pattern, "*.")
	endswith(lower(host), lower(substring(pattern, 1, -1)))
}

port_matches(entry) if not entry.port

port_matches(entry) if entry.port == input.target.port

# MQTT: connecting is allowed by any entry for the broker; data moves only on listed topics.
operation_permitted(_) if input.operation == "connect"

# DNS: the name itself is what leaves; an entry listing "dns" for it allows the lookup.
operation_permitted(_) if input.operation == "lookup"

operation_permitted(entry) if {
	input.operation in {"publish", "subscribe"}
	some filter in entry.topics
	topic_matches(filter, input.mqtt.topic)
}

operation_permitted(entry) if {
	input.operation == "request"
	method_matches(entry)
	path_matches(entry)
}

operation_permitted(entry) if {
	input.operation == "tunnel"
	not entry.paths
	not entry.methods
	not entry.topics
}

method_matches(entry) if not entry.methods

method_matches(entry) if input.http.method in entry.methods

path_matches(entry) if {
	not entry.paths
	path_is_normal(input.http.path)
}

path_matches(entry) if {
	some prefix in entry.paths
	path_is_normal(input.http.path)
	startswith(input.http.path, prefix)
}

# A prefix check is only meaningful on a normalised path: "/v1/aggregates/../raw" starts with
# "/v1/aggregates/" but the server resolves it to "/v1/raw". Dot segments, encoded dots or
# slashes and backslashes are refused.
path_is_normal(path) if {
	p := split(path, "?")[0]
	not regex.match(`(^|/)\.\.?(/|$)`, p)
	not regex.match(`(?i)%2e|%2f|%5c`, p)
	not contains(p, "\\")
}

# MQTT topic filter matching (`+` one level, trailing `#` any number of levels). For a
# subscribe, `topic` is itself a filter: it matches only when it is no broader than `filter`,
# because a wildcard in it must meet the same wildcard in `filter`.
topic_matches(filter, topic) if {
	f := split(filter, "/")
	t := split(topic, "/")
	dollar_rule(f, t)
	f[count(f) - 1] == "#"
	prefix := array.slice(f, 0, count(f) - 1)
	count(t) >= count(prefix)
	every i, seg in prefix {
		segment_matches(seg, t[i])
	}
}

topic_matches(filter, topic) if {
	f := split(filter, "/")
	t := split(topic, "/")
	dollar_rule(f, t)
	f[count(f) - 1] != "#"
	count(f) == count(t)
	every i, seg in f {
		segment_matches(seg, t[i])
	}
}

# MQTT 4.7.2: a filter starting with a wildcard never matches a topic starting with `$`
# (`$SYS/...`, `$share/...`); such topics must be named literally.
dollar_rule(_, t) if not startswith(t[0], "$")

dollar_rule(f, t) if {
	startswith(t[0], "$")
	not f[0] in {"+", "#"}
}

segment_matches("+", seg) if seg != "#"

segment_matches(pattern, seg) if pattern == seg
