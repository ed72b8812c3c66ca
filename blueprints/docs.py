"""Swagger UI's files, served by the app (``/docs/assets/``) from a pinned
package, so that ``/docs`` works without the internet."""
from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/docs/assets/"

blp = Blueprint("swagger_ui", __name__, static_folder=str(swagger_ui_path), static_url_path=ASSETS_URL.rstrip("/"))
