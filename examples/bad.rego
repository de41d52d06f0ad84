package plant.bad

import rego.v1

allow if {
