# Tests of the export allowlist (manufacturing.egress).
# Run with: sluice test policies/
package manufacturing.egress_test

import data.manufacturing.egress
import data.manufacturing.smart
import rego.v1

source := {"workload": "aggregator", "namespace": "line-1", "node": "edge-17", "site": "plant-042"}

# Decision inputs as the gateway builds them (DESIGN.md contract): the forward proxy sees
# methods and paths of plain-HTTP requests only; HTTPS goes through CONNECT tunnels.
mqtt_input(operation, host, port, topic) := {
	"action": action(host),
	"destination": destination(host),
	"data_stays_local": host == "broker.plant.local",
	"protocol": "mqtt",
	"operation": operation,
	"source": source,
	"target": {"host": host, "port": port, "zone": zone(host)},
	"mqtt": {"topic": topic, "qos": 1, "retain": false},
}

http_input(method, host, path) := {
	"action": action(host),
	"destination": destination(host),
	"data_stays_local": host == "historian.plant.local",
	"protocol": "http",
	"operation": "request",
	"source": source,
	"target": {"host": host, "port": 80, "zone": zone(host)},
	"http": {"method": method, "scheme": "http", "path": path},
}

tunnel_input(protocol, host, port) := {
	"action": action(host),
	"destination": destination(host),
	"data_stays_local": false,
	"protocol": protocol,
	"operation": "tunnel",
	"source": source,
	"target": {"host": host, "port": port, "zone": zone(host)},
}

action(host) := "process_data" if endswith(host, ".plant.local")
else := "export"

destination(host) := "local" if endswith(host, ".plant.local")
else := host

zone(host) := "local" if endswith(host, ".plant.local")
else := "external"

# The shipped example: aggregated telemetry to one named cloud endpoint.
aggregates := {
	"name": "aggregates-to-cloud",
	"host": "ingest.cloud.example.com",
	"port": 8883,
	"protocols": ["mqtt"],
	"topics": ["plant/+/aggregates/#"],
}

uploads := {
	"name": "daily-report",
	"host": "*.reports.example.com",
	"protocols": ["http"],
	"methods": ["POST"],
	"paths": ["/v1/reports/"],
}

vpn := {"name": "vendor-vpn", "host": "vpn.vendor.example.net", "port": 443, "protocols": ["https"]}

allowlist := [aggregates, uploads, vpn]

# The verdict as the Decider computes it: allow true and deny neither true nor non-empty.
allowed(doc) if {
	egress.allow with input as doc with data.manufacturing.export_allowlist as allowlist
	count(egress.deny) == 0 with input as doc with data.manufacturing.export_allowlist as allowlist
}

# With an empty allowlist (the shipped data.json) verdicts equal the seed policy's.

seed_cases := [
	{"action": "process_data", "data_stays_local": true},
	{"action": "process_data", "data_stays_local": false},
	{"action": "export", "destination": "ingest.cloud.example.com"},
	{"action": "export", "destination": "local"},
	{},
	mqtt_input("publish", "broker.plant.local", 1883, "plant/l1/press/temp"),
	mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/l1/aggregates/hourly"),
	http_input("POST", "eu.reports.example.com", "/v1/reports/today"),
	tunnel_input("https", "vpn.vendor.example.net", 443),
]

test_empty_allowlist_gives_the_seed_verdicts if {
	every doc in seed_cases {
		egress.allow == smart.allow with input as doc
		egress_denied(doc) == seed_denied(doc)
	}
}

# true or false, never undefined (smart.deny is undefined when it does not apply).
seed_denied(doc) := count([1 | smart.deny with input as doc]) > 0

egress_denied(doc) := count([1 | count(egress.deny) > 0 with input as doc]) > 0

test_shipped_allowlist_is_empty if {
	data.manufacturing.export_allowlist == []
}

test_seed_shaped_export_is_denied_with_a_reason if {
	egress.deny == {"traffic sent to ingest.cloud.example.com is an export and no allowlist entry permits it"} with input as {"action": "export", "destination": "ingest.cloud.example.com"}
}

test_local_traffic_stays_allowed_with_an_allowlist if {
	allowed(mqtt_input("publish", "broker.plant.local", 1883, "plant/l1/press/raw"))
}

# MQTT: aggregated topics to the named endpoint.

test_aggregated_publish_to_named_endpoint_is_allowed if {
	doc := mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/line1/aggregates/hourly")
	allowed(doc)
	egress.allowed_by == {"aggregates-to-cloud"} with input as doc with data.manufacturing.export_allowlist as allowlist
}

test_raw_publish_to_named_endpoint_is_denied if {
	doc := mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/line1/press7/temp")
	not allowed(doc)
	egress.deny == {"mqtt publish to ingest.cloud.example.com is an export and no allowlist entry permits it"} with input as doc with data.manufacturing.export_allowlist as allowlist
}

test_aggregated_publish_to_another_host_is_denied if {
	not allowed(mqtt_input("publish", "ingest.other.example.com", 8883, "plant/line1/aggregates/hourly"))
}

test_aggregated_publish_on_another_port_is_denied if {
	not allowed(mqtt_input("publish", "ingest.cloud.example.com", 1883, "plant/line1/aggregates/hourly"))
}

test_host_compares_case_insensitively if {
	allowed(mqtt_input("publish", "Ingest.Cloud.Example.com", 8883, "plant/line1/aggregates/hourly"))
}

test_connect_to_named_endpoint_is_allowed if {
	allowed(mqtt_input("connect", "ingest.cloud.example.com", 8883, ""))
}

test_connect_to_unlisted_broker_is_denied if {
	not allowed(mqtt_input("connect", "broker.example.org", 8883, ""))
}

test_protocol_not_listed_is_denied if {
	doc := object.union(mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/l1/aggregates/x"), {"protocol": "tcp"})
	not allowed(doc)
}

# Wildcards: + is exactly one level, # is any number of levels including none.

test_plus_matches_exactly_one_level if {
	allowed(mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/l2/aggregates/daily"))
	not allowed(mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/l2/cell3/aggregates/daily"))
	not allowed(mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/aggregates/daily"))
}

test_hash_matches_parent_and_many_levels if {
	allowed(mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/l2/aggregates"))
	allowed(mqtt_input("publish", "ingest.cloud.example.com", 8883, "plant/l2/aggregates/daily/oee/shift1"))
}

test_topic_must_match_from_the_root if {
	not allowed(mqtt_input("publish", "ingest.cloud.example.com", 8883, "site/plant/l2/aggregates/daily"))
}

test_wildcards_never_match_dollar_topics if {
	doc := mqtt_input("publish", "ingest.cloud.example.com", 8883, "$SYS/broker/load")
	not egress.allow with input as doc with data.manufacturing.export_allowlist as [object.union(aggregates, {"topics": ["#"]})]
	not egress.allow with input as doc with data.manufacturing.export_allowlist as [object.union(aggregates, {"topics": ["+/broker/#"]})]
	egress.allow with input as doc with data.manufacturing.export_allowlist as [object.union(aggregates, {"topics": ["$SYS/#"]})]
}

# Subscribe: the client's filter must be no broader than the entry's.

test_subscribe_equal_filter_is_allowed if {
	allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/+/aggregates/#"))
}

test_subscribe_narrower_filter_is_allowed if {
	allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/line1/aggregates/#"))
	allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/+/aggregates/hourly"))
}

test_subscribe_broader_filters_are_denied if {
	not allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "#"))
	not allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/#"))
	not allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/+/#"))
	not allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/+/+/#"))
	not allowed(mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "+/+/aggregates/#"))
}

test_subscribe_plus_where_entry_has_a_name_is_denied if {
	entry := object.union(aggregates, {"topics": ["plant/line1/aggregates/hourly"]})
	doc := mqtt_input("subscribe", "ingest.cloud.example.com", 8883, "plant/+/aggregates/hourly")
	not egress.allow with input as doc with data.manufacturing.export_allowlist as [entry]
}

# HTTP: host wildcard, method and path prefix.

test_http_post_under_listed_path_is_allowed if {
	doc := http_input("POST", "eu.reports.example.com", "/v1/reports/2024-05-01")
	allowed(doc)
	egress.allowed_by == {"daily-report"} with input as doc with data.manufacturing.export_allowlist as allowlist
}

test_http_other_method_is_denied if {
	not allowed(http_input("GET", "eu.reports.example.com", "/v1/reports/2024-05-01"))
	not allowed(http_input("PUT", "eu.reports.example.com", "/v1/reports/2024-05-01"))
}

test_http_other_path_is_denied if {
	not allowed(http_input("POST", "eu.reports.example.com", "/v1/raw/press7"))
	not allowed(http_input("POST", "eu.reports.example.com", "/v1/report"))
}

test_http_dot_segments_cannot_escape_the_prefix if {
	not allowed(http_input("POST", "eu.reports.example.com", "/v1/reports/../raw/press7"))
	not allowed(http_input("POST", "eu.reports.example.com", "/v1/reports/%2e%2e/raw"))
	not allowed(http_input("POST", "eu.reports.example.com", "/v1/reports/..%2Fraw"))
	not allowed(http_input("POST", "eu.reports.example.com", "/v1/reports/.."))
}

test_http_query_string_does_not_disturb_the_prefix if {
	allowed(http_input("POST", "eu.reports.example.com", "/v1/reports/upload?day=1"))
}

test_host_wildcard_needs_a_subdomain if {
	not allowed(http_input("POST", "reports.example.com", "/v1/reports/x"))
	not allowed(http_input("POST", "evilreports.example.com", "/v1/reports/x"))
	allowed(http_input("POST", "a.b.reports.example.com", "/v1/reports/x"))
}

test_http_entry_without_methods_or_paths_allows_any_normal_request if {
	entry := {"name": "any", "host": "api.example.com", "protocols": ["http"]}
	doc := http_input("DELETE", "api.example.com", "/anything")
	egress.allow with input as doc with data.manufacturing.export_allowlist as [entry]
	not egress.allow with input as http_input("GET", "api.example.com", "/a/../b") with data.manufacturing.export_allowlist as [entry]
}

# Tunnels (CONNECT): paths and methods are hidden, so only an unrestricted entry allows one.

test_tunnel_allowed_by_unrestricted_entry if {
	allowed(tunnel_input("https", "vpn.vendor.example.net", 443))
}

test_tunnel_to_other_port_is_denied if {
	not allowed(tunnel_input("https", "vpn.vendor.example.net", 8443))
}

test_tunnel_denied_by_entry_with_paths_or_methods if {
	both := object.union(uploads, {"protocols": ["http", "https"]})
	not egress.allow with input as tunnel_input("https", "eu.reports.example.com", 443) with data.manufacturing.export_allowlist as [both]
	entry := {"name": "m", "host": "vpn.vendor.example.net", "protocols": ["https"], "methods": ["POST"]}
	not egress.allow with input as tunnel_input("https", "vpn.vendor.example.net", 443) with data.manufacturing.export_allowlist as [entry]
}

test_tunnel_denied_by_entry_with_topics if {
	entry := object.union(aggregates, {"protocols": ["mqtt", "tcp"]})
	not egress.allow with input as tunnel_input("tcp", "ingest.cloud.example.com", 8883) with data.manufacturing.export_allowlist as [entry]
}

test_tunnel_protocol_must_be_listed if {
	not allowed(tunnel_input("tcp", "vpn.vendor.example.net", 443))
}

lookup_input(host) := {
	"action": "export",
	"destination": host,
	"data_stays_local": false,
	"protocol": "dns",
	"operation": "lookup",
	"source": source,
	"target": {"host": host, "port": 53, "zone": "external"},
}

lookup_entry := {"name": "cloud-lookup", "host": "*.cloud.example.com", "protocols": ["dns"]}

test_lookup_of_an_allowlisted_name_is_allowed if {
	egress.allow with input as lookup_input("ingest.cloud.example.com")
		with data.manufacturing.export_allowlist as [lookup_entry]
}

test_lookup_needs_an_entry_that_lists_dns if {
	not egress.allow with input as lookup_input("ingest.cloud.example.com")
		with data.manufacturing.export_allowlist as [object.union(lookup_entry, {"protocols": ["https"]})]
	not egress.allow with input as lookup_input("c2VjcmV0.exfil.example")
		with data.manufacturing.export_allowlist as [lookup_entry]
}
