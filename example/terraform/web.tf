# The web servers: a launch template and an Auto Scaling group on its
# "$Latest" version. Terraform owns their shape; phoenix owns the image.
#
# A phoenix deploy creates a new launch template version with only the AMI
# changed (and a description saying so), holds the group on a numbered
# version while the new image proves itself, and puts "$Latest" back when
# the deploy has an outcome, with $Latest launching the image that passed the
# health gate. See docs/terraform.md.

resource "aws_security_group" "web" {
  name        = "${var.name}-web"
  description = "The ${var.name} web servers"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "The app, from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "web_https" {
  security_group_id = aws_security_group.web.id
  description       = "HTTPS to AWS APIs and the app's dependencies"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_launch_template" "web" {
  name                   = var.name
  image_id               = var.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.web.id]
  user_data              = base64encode(templatefile("${path.module}/user-data.sh.tftpl", { port = var.app_port }))

  # A change made here becomes the template's default version too.
  # phoenix's versions do not change the default version of a template
  # whose group is on "$Latest"; Terraform does not diff it either way
  # (default_version is computed when update_default_version is set).
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name    = var.name
      Service = var.name
    }
  }

  lifecycle {
    # The provider reads the template's *latest* version (image_id,
    # description and every other argument), and phoenix makes a new latest
    # version at each deploy:
    # - image_id: the image phoenix deployed. Without this, the next apply
    #   would create a version with var.ami_id, the image the stack was
    #   created with, and the group ("$Latest") would launch it at the
    #   next scale-out.
    # - description: phoenix's versions describe themselves
    #   ("phoenix: ami-NEW, previous version N (ami-OLD)"); phoenix
    #   rollback reads it to find the version before a deploy.
    # Every other argument still belongs to Terraform: a change to it makes
    # a new version that keeps phoenix's image, and the next deploy rolls
    # it out.
    ignore_changes = [image_id, description]
  }
}

resource "aws_autoscaling_group" "web" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.web.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }

  tag {
    key                 = "Service"
    value               = var.name
    propagate_at_launch = true
  }

  # No ignore_changes needed for phoenix: a rolling deploy leaves min_size,
  # max_size and desired_capacity alone, and the launch template reference
  # is "$Latest" again once the deploy has an outcome. (If you add scaling
  # policies, ignore desired_capacity as usual: they change it, not phoenix.)
  #
  # No instance_refresh block either: phoenix starts the refreshes, and a
  # refresh that Terraform started would make phoenix refuse to deploy until
  # it ends.
}
