from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="Document",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=128)),
                ("original_filename", models.CharField(max_length=1024)),
                ("storage_path", models.CharField(help_text="relative to PAPERLESS_MEDIA_ROOT", max_length=1024)),
                ("size", models.BigIntegerField(default=0)),
                ("checksum", models.CharField(blank=True, default="", max_length=64)),
                ("status", models.CharField(default="queued", max_length=16)),
                ("task_id", models.CharField(blank=True, default="", max_length=64)),
                ("consumed_by", models.CharField(blank=True, default="", max_length=255)),
                ("added", models.DateTimeField(auto_now_add=True)),
                ("consumed", models.DateTimeField(blank=True, null=True)),
            ],
        ),
    ]
