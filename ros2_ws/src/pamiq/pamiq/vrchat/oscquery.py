"""Advertising an OSC listener with OSCQuery, the way VRChat (2023.3 and later) finds OSC apps.

No ROS here. VRChat browses mDNS for `_oscjson._tcp` services, asks each over HTTP what it is
(`/?HOST_INFO`) and which addresses it takes (`/`), and sends its avatar parameters to the UDP
port an app that takes `/avatar` names. `OscQueryAdvertiser` serves those two answers and
registers the HTTP service and the OSC port with zeroconf, on the listener's interface only
(127.0.0.1 keeps mDNS on this machine). zeroconf is imported only when advertising.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import socket
import threading

from pamiq.vrchat.avatar import CHANGE_ADDRESS, PARAMETER_PREFIX

OSCJSON_SERVICE = '_oscjson._tcp.local.'
OSC_SERVICE = '_osc._udp.local.'
ACCESS_WRITE = 2  # OSCQuery: the app takes values at this address


def address_tree(addresses: dict[str, str]) -> dict:
    """OSCQuery's tree of nodes for {address: OSC type tag} (a prefix ends in '/')."""
    root: dict = {'DESCRIPTION': 'root node', 'FULL_PATH': '/', 'ACCESS': 0, 'CONTENTS': {}}
    for address, type_tag in addresses.items():
        node, path = root, ''
        for part in address.strip('/').split('/'):
            path += '/' + part
            node = node['CONTENTS'].setdefault(
                part, {'FULL_PATH': path, 'ACCESS': 0, 'CONTENTS': {}}
            )
        node['ACCESS'] = ACCESS_WRITE
        if type_tag:
            node['TYPE'] = type_tag
    return root


def host_info(name: str, host: str, osc_port: int) -> dict:
    return {
        'NAME': name,
        'OSC_IP': host,
        'OSC_PORT': osc_port,
        'OSC_TRANSPORT': 'UDP',
        'EXTENSIONS': {'ACCESS': True, 'VALUE': False, 'DESCRIPTION': True},
    }


class OscQueryAdvertiser:
    """Serves OSCQuery for a UDP OSC listener at host:osc_port and announces it with mDNS."""

    def __init__(self, name: str, host: str, osc_port: int) -> None:
        from zeroconf import ServiceInfo, Zeroconf

        tree = address_tree({CHANGE_ADDRESS: 's', PARAMETER_PREFIX.rstrip('/'): ''})
        info = host_info(name, host, osc_port)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(info if 'HOST_INFO' in self.path else tree).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass  # VRChat polls; its requests are not news

        self.http = ThreadingHTTPServer((host, 0), Handler)
        self.http_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, name='oscquery', daemon=True).start()
        address = socket.inet_aton(host)
        self.services = [
            ServiceInfo(
                OSCJSON_SERVICE,
                f'{name}.{OSCJSON_SERVICE}',
                addresses=[address],
                port=self.http_port,
                server=f'{name}.local.',
            ),
            ServiceInfo(
                OSC_SERVICE,
                f'{name}.{OSC_SERVICE}',
                addresses=[address],
                port=osc_port,
                server=f'{name}.local.',
            ),
        ]
        self.zeroconf = Zeroconf(interfaces=[host])
        for service in self.services:
            self.zeroconf.register_service(service)

    def close(self, timeout: float = 3.0) -> None:
        """Say goodbye on mDNS (zeroconf paces its goodbye packets) within `timeout` seconds,
        then stop serving."""

        def goodbye() -> None:
            self.zeroconf.unregister_all_services()
            self.zeroconf.close()

        leaving = threading.Thread(target=goodbye, name='oscquery-goodbye', daemon=True)
        leaving.start()
        leaving.join(timeout)
        self.http.shutdown()
        self.http.server_close()
