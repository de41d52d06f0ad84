package manufacturing.smart

import rego.v1

# deny every request by default
default allow = false

# allow local data processing
allow if {
    input.action == "process_data"
    input.data_stays_local == true
}

# deny data export
deny if {
    input.action == "export"
    input.destination != "local"
}
