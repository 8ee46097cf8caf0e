"""A FastAPI application for integration_function_discovery: OpenAPI 3.1 at /openapi.json with
path, query, header and body parameters. POST /_change (not in the document) adds an operation
(archiveBook) and removes one (deleteBook), so the document changes while it runs."""
from typing import Optional

from fastapi import FastAPI, Header
from pydantic import BaseModel

app = FastAPI(title="Bookstore", version="1.0")


class Book(BaseModel):
    title: str
    author: str
    pages: int = 0


@app.get("/books", operation_id="listBooks")
def list_books(limit: int = 10, author: Optional[str] = None, x_request_id: Optional[str] = Header(None)):
    return []


@app.post("/books", operation_id="createBook")
def create_book(book: Book):
    return book


@app.get("/books/{book_id}", operation_id="getBook")
def get_book(book_id: int):
    return {"id": book_id}


@app.delete("/books/{book_id}", operation_id="deleteBook")
def delete_book(book_id: int):
    return {}


@app.get("/health")  # no operationId given: FastAPI generates one
def health():
    return {"ok": True}


def archive_book(book_id: int, reason: Optional[str] = None):
    return {"id": book_id}


@app.post("/_change", include_in_schema=False)
def change():
    app.router.routes = [r for r in app.router.routes if getattr(r, "name", "") != "delete_book"]
    app.add_api_route("/books/{book_id}/archive", archive_book, methods=["POST"], operation_id="archiveBook")
    app.openapi_schema = None  # FastAPI caches the document
    return {"changed": True}
