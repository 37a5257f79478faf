"""`manage.py lab up`: start the DR lab (two MariaDB servers with replication, PowerDNS) and leave it running,
with the control plane's settings printed, so a person can click a failover in the portal and watch."""
import signal
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from dr.lab import HOST, Lab, Writer


class Command(BaseCommand):
    help = "Start the DR lab and keep it running until Ctrl-C (with --writer, also insert rows continuously)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["up"])
        parser.add_argument("--dir", default=str(Path(settings.DATA_DIR) / "lab"))
        parser.add_argument("--writer", action="store_true", help="insert numbered rows through the DNS answer")

    def handle(self, *args, dir, writer, **opts):
        lab = Lab(Path(dir)).up()
        env = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in lab.settings().items()}
        self.stdout.write("The DR lab is up: MariaDB primary 127.0.0.11:33306, secondary 127.0.0.12:33306 (replicating), "
                          f"PowerDNS on 127.0.0.1:{lab.dns.dns_port} (API {lab.dns.url}) serving {HOST}.")
        self.stdout.write("Point the control plane at it (another shell), then request the `lab` cell as dev:")
        self.stdout.write("  " + " ".join(f"{k}={v}" for k, v in env.items()) + " make run")
        self.stdout.write(f"  DNS: python -c \"import dns.resolver as r; x=r.Resolver(configure=False); x.nameservers=['127.0.0.1']; "
                          f"x.port={lab.dns.dns_port}; print(x.resolve('{HOST}','A')[0])\"")
        w = Writer(lab) if writer else None
        if w:
            w.start()
        stop = []
        signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
        try:
            while not stop:
                time.sleep(2)
                if w:
                    self.stdout.write(f"writer: {len(w.acked)} rows acknowledged, {len(w.errors)} refused, by target {w.targets}")
        except KeyboardInterrupt:
            pass
        finally:
            if w:
                w.stop()
            lab.down()
            self.stdout.write("lab stopped")
