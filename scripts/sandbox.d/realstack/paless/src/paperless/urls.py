"""The routes the Paless manifests and tests depend on."""

from django.urls import path

from documents import views

urlpatterns = [
    path("", views.index),
    path("accounts/login/", views.login_page),
    path("api/", views.api_root),
    path("api/documents/", views.document_list),
    path("api/documents/post_document/", views.post_document),
    path("api/documents/<int:pk>/", views.document_detail),
]
