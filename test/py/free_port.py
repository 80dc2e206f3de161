"""free_port.py [tcp|tcp+udp]: prints a port free on 127.0.0.1 a moment ago, for TCP (the
default) or for both TCP and UDP (a DNS server's)."""
import socket
import sys

both = sys.argv[1:] == ["tcp+udp"]
while True:
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    if both:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            continue
        u.close()
    t.close()
    print(port)
    break
