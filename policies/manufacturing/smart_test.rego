# Tests of the seed policy (manufacturing.smart): every rule, every branch.
# Run with: sluice test policies/
package manufacturing.smart_test

import data.manufacturing.smart
import rego.v1

# What the gateway sends for a publish to the plant's own broker (DESIGN.md contract).
local_publish := {
	"action": "process_data",
	"destination": "local",
	"data_stays_local": true,
	"protocol": "mqtt",
	"operation": "publish",
	"source": {"workload": "iot-data-processor", "namespace": "line-1", "node": "edge-17", "site": "plant-042"},
	"target": {"host": "broker.plant.local", "port": 1883, "ip": "10.4.0.9", "zone": "local"},
	"mqtt": {"topic": "plant/line1/press7/temp", "qos": 1, "retain": false},
}

# The same publish aimed at a cloud broker.
cloud_publish := object.union(local_publish, {
	"action": "export",
	"destination": "ingest.cloud.example.com",
	"data_stays_local": false,
	"target": {"host": "ingest.cloud.example.com", "port": 8883, "zone": "external"},
})

test_local_processing_is_allowed if {
	smart.allow with input as {"action": "process_data", "data_stays_local": true}
}

test_local_processing_is_not_denied if {
	not smart.deny with input as {"action": "process_data", "data_stays_local": true}
}

test_gateway_local_publish_is_allowed_and_not_denied if {
	smart.allow with input as local_publish
	not smart.deny with input as local_publish
}

test_processing_when_data_leaves_is_not_allowed if {
	not smart.allow with input as {"action": "process_data", "data_stays_local": false}
}

test_data_stays_local_must_be_boolean_true if {
	not smart.allow with input as {"action": "process_data", "data_stays_local": "true"}
}

test_missing_data_stays_local_is_not_allowed if {
	not smart.allow with input as {"action": "process_data"}
}

test_default_allow_is_false_not_undefined if {
	smart.allow == false with input as {}
}

test_other_actions_are_not_allowed if {
	smart.allow == false with input as {"action": "read", "data_stays_local": true}
}

test_export_to_remote_destination_is_denied if {
	smart.deny with input as {"action": "export", "destination": "ingest.cloud.example.com"}
}

test_export_is_never_allowed if {
	smart.allow == false with input as {"action": "export", "destination": "ingest.cloud.example.com", "data_stays_local": true}
}

test_gateway_cloud_publish_is_denied_and_not_allowed if {
	smart.deny with input as cloud_publish
	smart.allow == false with input as cloud_publish
}

test_export_to_local_destination_is_not_denied if {
	not smart.deny with input as {"action": "export", "destination": "local"}
}

test_export_without_destination_is_not_denied_but_not_allowed if {
	not smart.deny with input as {"action": "export"}
	smart.allow == false with input as {"action": "export"}
}

test_empty_input_is_neither_allowed_nor_denied if {
	smart.allow == false with input as {}
	not smart.deny with input as {}
}
