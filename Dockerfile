# The suite on the official Odoo 18 image: adds the engine's Python dependencies, the engine itself and the
# addons. The meter simulator runs from the same image (docker-compose.yml, service "simulator").
FROM odoo:18

USER root
COPY requirements.txt /opt/prepaid/requirements.txt
RUN pip3 install --no-cache-dir --break-system-packages -r /opt/prepaid/requirements.txt
COPY pyproject.toml README.md /opt/prepaid/
COPY prepaid_engine /opt/prepaid/prepaid_engine
RUN pip3 install --no-cache-dir --break-system-packages --no-deps /opt/prepaid
COPY addons /mnt/extra-addons
RUN chown -R odoo:odoo /mnt/extra-addons
# The simulator's state volume (docker-compose.yml): a new named volume takes this directory's owner.
RUN mkdir -p /state && chown odoo:odoo /state
USER odoo
