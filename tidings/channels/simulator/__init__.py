"""The built-in carrier simulator."""

from tidings.channels.connectors import ConnectorType
from tidings.channels.simulator.connector import SimulatorConnector, SimulatorOptions

CONNECTOR_TYPE = ConnectorType(name="simulator", options=SimulatorOptions, build=SimulatorConnector)
